// @agentrace/sdk/langchain: LangChain.js and LangGraph runs as OpenTelemetry
// spans, each tool call an execute_tool span that is active while the tool
// runs, so the sidecar attributes its kernel activity to it. Needs
// @langchain/core (an optional peer dependency of @agentrace/sdk; the main
// entry never loads it).
//
//   const handler = instrumentLangChain();            // once, at start-up
//   await graph.invoke(input, { callbacks: [handler] });
import { AgentraceCallbackHandler } from './handler.js';
import type { LangChainTracingOptions } from './options.js';
import { instrumentTools } from './tools.js';

export { AgentraceCallbackHandler } from './handler.js';
export { instrumentTools, toolsInstrumented } from './tools.js';
export { openRuns } from './runs.js';
export type { LangChainTracingOptions } from './options.js';

/**
 * Both pieces at once: patches LangChain's tools (instrumentTools) and
 * returns a callback handler to pass as `callbacks` to the top-level
 * invoke (or once with `.withConfig({ callbacks: [handler] })`); child runs
 * inherit it. Capture options apply to every tool.
 */
export function instrumentLangChain(options: LangChainTracingOptions = {}): AgentraceCallbackHandler {
  instrumentTools(options);
  return new AgentraceCallbackHandler(options);
}
