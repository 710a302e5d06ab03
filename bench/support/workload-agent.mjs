// An agent process for bench/traced-overhead.ts: a realistic tool workload
// (file reads, HTTP requests to a local server, a child process per task),
// its tools wrapped with traceTool (mode "sdk") or plain functions (mode
// "plain", @agentrace/sdk not even loaded). Prints one JSON line once the
// sidecar welcomed it ({"ready", "welcomeMs"}), then one with the wall time of
// the measured tasks ({"ms", "welcomed"}).
//   node workload-agent.mjs '{"mode","files","url","tasks","warmup","needSidecar"}'
import fs from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const plan = JSON.parse(process.argv[2]);
const sdk = plan.mode === 'sdk' ? await import('@agentrace/sdk') : undefined;
const tool = (name, fn) => (sdk ? sdk.traceTool(name, fn) : fn);
const run = promisify(execFile);

const readFiles = tool('read_files', async (paths) => {
  let bytes = 0;
  for (const p of paths) bytes += (await fs.readFile(p)).length;
  return bytes;
});
const httpGet = tool('http_get', async (url) => (await (await fetch(url)).text()).length);
const runCommand = tool('run_command', async (file) => (await run('/bin/cat', [file])).stdout.length);

async function task(i) {
  let n = await readFiles(plan.files);
  n += await httpGet(`${plan.url}?q=${i}`);
  n += await httpGet(`${plan.url}?q=${i}&page=2`);
  n += await runCommand(plan.files[i % plan.files.length]);
  return n;
}

let welcomed = false;
const asked = performance.now();
if (sdk && plan.needSidecar) {
  welcomed = await sdk.ready(30_000);
  if (!welcomed) {
    console.error('workload-agent: the sidecar did not welcome us within 30 s');
    process.exit(3);
  }
}
// The driver starts its CPU accounting (and profiler) on this line.
console.log(JSON.stringify({ ready: true, welcomeMs: performance.now() - asked }));
let sink = 0;
for (let i = 0; i < plan.warmup; i++) sink += await task(i);
const t0 = performance.now();
for (let i = 0; i < plan.tasks; i++) sink += await task(i);
const ms = performance.now() - t0;
if (sink <= 0) throw new Error('the workload read nothing');
await sdk?.shutdown();
console.log(JSON.stringify({ ms, welcomed }));
