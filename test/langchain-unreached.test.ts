// An integration that cannot reach the copy of the framework the agent runs
// says so (issue 12): here the agent's tool comes from a second ES-module
// copy of @langchain/core's tools module (what another version, or another
// node_modules, looks like), which instrumentTools() has no way to patch.
// Its call still gets a span, from the handler, marked as not the tool's
// own; and the SDK warns once. In its own file: the warning is once per
// process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { AgentraceCallbackHandler, instrumentLangChain, toolsInstrumented } from '@agentrace/sdk/langchain';
import { useAppProvider } from './support/app-provider.js';

const { exporter, provider } = useAppProvider('langchain-unreached');

test('a tool from a copy of @langchain/core the SDK cannot reach: its span says so, and the SDK warns once', async () => {
  const handler: AgentraceCallbackHandler = instrumentLangChain();
  assert.equal(toolsInstrumented(), true);
  // The same file under another URL is another module instance, with its own StructuredTool class.
  const toolsFile = createRequire(import.meta.url).resolve('@langchain/core/tools').replace(/\.cjs$/, '.js');
  const copy = (await import(`${pathToFileURL(toolsFile).href}?another-copy`)) as typeof import('@langchain/core/tools');
  const lookup = copy.tool(async ({ q }: { q: string }) => `found ${q}`, { name: 'lookup', description: 'Look up', schema: z.object({ q: z.string() }) });

  const warnings: Array<{ code?: string; message: string }> = [];
  const onWarning = (w: Error & { code?: string }): void => void warnings.push({ code: w.code, message: w.message });
  process.on('warning', onWarning);
  try {
    for (const id of ['u-1', 'u-2']) {
      const out = await lookup.invoke({ type: 'tool_call', name: 'lookup', args: { q: id }, id }, { callbacks: [handler] });
      assert.equal((out as { content: string }).content, `found ${id}`, 'the tool still runs');
    }
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans().filter((s: ReadableSpan) => s.name === 'execute_tool lookup');
  assert.deepEqual(spans.map((s) => [s.attributes['gen_ai.tool.call.id'], s.attributes['agentrace.tool.unpatched']]), [['u-1', true], ['u-2', true]]);
  const unreached = warnings.filter((w) => w.code === 'AGENTRACE_FRAMEWORK_UNREACHED');
  assert.equal(unreached.length, 1, JSON.stringify(warnings));
  assert.match(unreached[0]!.message, /"lookup" ran outside its execute_tool span: it runs a copy of @langchain\/core that instrumentTools\(\) cannot reach/);
});
