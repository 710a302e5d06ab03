// What a model run's result says about the response, as GenAI attributes:
// token usage (the messages' usage_metadata, else the provider's
// llmOutput.tokenUsage), the response model, id and finish reasons.
import type { LLMResult } from '@langchain/core/outputs';
import type { Attrs } from '@agentrace/protocol';

interface GenerationLike {
  generationInfo?: Record<string, unknown>;
  message?: {
    id?: unknown;
    usage_metadata?: { input_tokens?: unknown; output_tokens?: unknown };
    response_metadata?: Record<string, unknown>;
  };
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function usageAttributes(output: LLMResult): Attrs {
  const attrs: Attrs = {};
  let input: number | undefined;
  let outputTokens: number | undefined;
  const finish: string[] = [];
  for (const gens of output?.generations ?? []) {
    for (const g of (gens ?? []) as GenerationLike[]) {
      const m = g?.message;
      const u = m?.usage_metadata;
      const i = num(u?.input_tokens);
      const o = num(u?.output_tokens);
      if (i !== undefined) input = (input ?? 0) + i;
      if (o !== undefined) outputTokens = (outputTokens ?? 0) + o;
      const meta = m?.response_metadata;
      const reason = str(meta?.['finish_reason']) ?? str(meta?.['stop_reason']) ?? str(g?.generationInfo?.['finish_reason']);
      if (reason !== undefined) finish.push(reason);
      const model = str(meta?.['model_name']) ?? str(meta?.['model']);
      if (model !== undefined) attrs['gen_ai.response.model'] ??= model;
      // LangChain names a message `run-{runId}` when the provider gave no id.
      const id = str(m?.id);
      if (id !== undefined && !id.startsWith('run-')) attrs['gen_ai.response.id'] ??= id;
    }
  }
  if (input === undefined && outputTokens === undefined) {
    const usage = (output?.llmOutput?.['tokenUsage'] ?? output?.llmOutput?.['estimatedTokenUsage']) as
      | { promptTokens?: unknown; completionTokens?: unknown }
      | undefined;
    input = num(usage?.promptTokens);
    outputTokens = num(usage?.completionTokens);
  }
  if (input !== undefined) attrs['gen_ai.usage.input_tokens'] = input;
  if (outputTokens !== undefined) attrs['gen_ai.usage.output_tokens'] = outputTokens;
  if (finish.length > 0) attrs['gen_ai.response.finish_reasons'] = finish;
  return attrs;
}
