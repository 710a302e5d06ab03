// @agentrace/sdk/openai-agents: the OpenAI Agents SDK (@openai/agents)
// integration, in two parts, each set up once:
//  - AgentraceProcessor, a trace processor (addTraceProcessor or
//    setTraceProcessors) that mirrors the agents SDK's traces and spans
//    (task, invoke_agent, turn, ...) as OpenTelemetry spans;
//  - tool(), the agents SDK's tool() with each call of its execute function
//    made an `execute_tool {name}` span, active while it runs, under the
//    run's agent (turn) span, with gen_ai.tool.call.id = the model's
//    tool-call id. Import it instead of the agents SDK's tool().
export { AgentraceProcessor } from './processor.js';
export { createTool, tool, type AgentsTraceOptions } from './tool.js';
