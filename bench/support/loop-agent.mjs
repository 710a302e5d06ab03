// An agent as users write one, for bench/agent-loop.ts: a loop of turns, each
// asking the (mock) model with the global fetch (pooled keep-alive
// connections) and running the tool calls it answers, in parallel; tools
// that read a file, fetch a page, run `ls` and append a note. Mode "sdk"
// wraps them with traceTool (no ready(): the SDK connects on its own), mode
// "plain" leaves @agentrace/sdk unloaded. Prints one JSON line at the end:
// {"ms", "cpuMs", "toolCalls", "turns"}: the loop's wall time and this
// process's CPU over it (children not included).
//   node loop-agent.mjs '{"mode", "model", "web", "dir"}'
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const plan = JSON.parse(process.argv[2]);
const sdk = plan.mode === 'sdk' ? await import('@agentrace/sdk') : undefined;
const tool = (name, fn) => (sdk ? sdk.traceTool(name, fn) : fn);
const run = promisify(execFile);
const notes = path.join(plan.dir, `notes-${process.pid}.md`);

const tools = {
  read_file: tool('read_file', async ({ n }) => (await fs.readFile(path.join(plan.dir, `doc-${n % 4}.txt`), 'utf8')).length),
  fetch_url: tool('fetch_url', async ({ n }) => (await (await fetch(`${plan.web}/page?q=${n}`)).text()).length),
  run_ls: tool('run_ls', async () => (await run('ls', ['-la', plan.dir])).stdout.length),
  write_note: tool('write_note', async ({ n }) => {
    await fs.appendFile(notes, `turn ${n}: noted\n`);
    return 1;
  }),
};

let toolCalls = 0;
let turn = 0;
for (;;) {
  const res = await fetch(`${plan.model}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ turn }),
  });
  const message = (await res.json()).choices[0].message;
  if (!message.tool_calls) break;
  const results = await Promise.all(message.tool_calls.map((c) => tools[c.name](c.arguments)));
  if (results.some((r) => !(r > 0))) throw new Error(`a tool returned nothing: ${JSON.stringify(results)}`);
  toolCalls += results.length;
  turn++;
}
await sdk?.shutdown();
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, toolCalls, turns: turn }));
