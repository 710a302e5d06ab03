// What starting costs a user (issue 16): `agentrace run -- true` against a
// bare `true` (wall, the user's wait: node, the probes' load and attach, the
// teardown), where that time goes (the sidecar's modules, loading the BPF
// object, detaching), and the CPU an agent pays to import @agentrace/sdk, in
// a fresh process and in one that already loaded @opentelemetry/api (an app
// with OpenTelemetry). Rounds interleaved; medians.
//
//   pnpm bench --only startup        (root)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import type { BenchOptions, BenchResult } from './support/result.js';
import { median } from './support/stats.js';
import { table } from './support/markdown.js';
import { repoRoot } from './support/build.js';

const bin = path.join(repoRoot, 'bin', 'agentrace');
const cli = path.join(repoRoot, 'packages', 'sidecar', 'dist', 'cli.js');
const GOAL_RUN_MS = 300;
const GOAL_IMPORT_MS = 30;

/** Wall time of one command, ms. */
function wallMs(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env, cwd: os.tmpdir() });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${r.stderr.toString().trim()}`);
  return ms;
}

/** CPU (user + system) a fresh node spends importing `modules` in order, the last one timed, ms. */
function importCpuMs(modules: string[]): number {
  const pre = modules.slice(0, -1).map((m) => `await import(${JSON.stringify(m)});`).join(' ');
  const script = `${pre} const c = process.cpuUsage(); await import(${JSON.stringify(modules.at(-1))}); const u = process.cpuUsage(c); console.log((u.user + u.system) / 1000);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8' });
  return Number(out.trim());
}

/**
 * Pids (other than this one) holding a BPF link, or exiting while the kernel
 * releases their perf events (a `run` helper detaching: its fd table is
 * already gone then).
 */
function linkHolders(): Set<number> {
  const out = new Set<number>();
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/stack`, 'utf8').includes('perf_event_release_kernel')) {
        out.add(Number(pid));
        continue;
      }
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:bpf_link') {
          out.add(Number(pid));
          break;
        }
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Waits until only `baseline`'s processes hold BPF links (the last `run`'s teardown is over), at most 15 s. */
async function teardownDone(baseline: Set<number>): Promise<void> {
  const until = Date.now() + 15_000;
  while ([...linkHolders()].some((pid) => !baseline.has(pid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 9;
  const runArgs = ['run', '--quiet', '--otlp-file', '/dev/null', '--', 'true'];
  const trueBin = execFileSync('sh', ['-c', 'command -v true'], { encoding: 'utf8' }).trim();
  const ms = { bare: [] as number[], run: [] as number[], again: [] as number[], help: [] as number[] };
  const baseline = linkHolders();
  const imports = { sdk: [] as number[], sdkAfterApi: [] as number[], api: [] as number[], base: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    ms.bare.push(wallMs(trueBin, []));
    // The kernel releases one run's probes after it exited (its helper); a
    // run that attaches meanwhile may wait for the tracepoints' lock.
    await teardownDone(baseline);
    ms.run.push(wallMs(bin, runArgs));
    ms.again.push(wallMs(bin, runArgs));
    ms.help.push(wallMs(process.execPath, [cli, '--help']));
    imports.base.push(importCpuMs(['node:fs']));
    imports.api.push(importCpuMs(['@opentelemetry/api']));
    imports.sdk.push(importCpuMs(['@agentrace/sdk']));
    imports.sdkAfterApi.push(importCpuMs(['@opentelemetry/api', '@agentrace/sdk']));
  }
  // Where `run`'s time goes: the BPF object's load and attach, and its detach
  // in this process (what `run` leaves to a helper process); and the load
  // after importing the commands' modules against both at once (the entry
  // point starts the load first, on the threadpool).
  const commands = path.join(repoRoot, 'packages/sidecar/dist/commands.js');
  const phaseScript = (overlap: boolean): string => `import { Probes } from '@agentrace/bpf';
       let t = performance.now();
       let p;
       ${overlap ? `const loading = Probes.loadAsync(); await import(${JSON.stringify(commands)}); p = await loading;` : `await import(${JSON.stringify(commands)}); const l0 = performance.now(); p = Probes.load({}); globalThis.load = performance.now() - l0;`}
       const ready = performance.now() - t;
       t = performance.now(); for (const g of ['context', 'file', 'net', 'process', 'io']) p.attach(g); const attach = performance.now() - t;
       t = performance.now(); p.close(); const close = performance.now() - t;
       console.log(JSON.stringify({ ready, load: globalThis.load ?? 0, attach, close }));`;
  type Phase = { ready: number; load: number; attach: number; close: number };
  const phaseOf = (overlap: boolean): Phase =>
    JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', phaseScript(overlap)], { cwd: repoRoot, encoding: 'utf8' }).trim()) as Phase;
  await teardownDone(baseline);
  const phase = phaseOf(false);
  const overlapped = phaseOf(true);
  const over = median(ms.run) - median(ms.bare);
  const sdkCpu = median(imports.sdk);
  const sdkAfterApi = median(imports.sdkAfterApi);
  const markdown = [
    `Medians of ${rounds} rounds, Node ${process.versions.node}.`,
    '',
    table(
      ['what', 'median', 'runs'],
      [
        ['`true`, bare: wall, ms', median(ms.bare).toFixed(1), ms.bare.map((v) => v.toFixed(0)).join(', ')],
        ['`agentrace run -- true`: wall, ms', median(ms.run).toFixed(0), ms.run.map((v) => v.toFixed(0)).join(', ')],
        ['`agentrace run -- true` right after another (its probes still detaching): wall, ms', median(ms.again).toFixed(0), ms.again.map((v) => v.toFixed(0)).join(', ')],
        ['`agentrace --help` (node and the sidecar\'s modules): wall, ms', median(ms.help).toFixed(0), ms.help.map((v) => v.toFixed(0)).join(', ')],
        ['import of `node:fs` (a fresh node\'s floor): CPU, ms', median(imports.base).toFixed(0), imports.base.map((v) => v.toFixed(0)).join(', ')],
        ['import of `@opentelemetry/api`: CPU, ms', median(imports.api).toFixed(0), imports.api.map((v) => v.toFixed(0)).join(', ')],
        ['import of `@agentrace/sdk`, fresh process: CPU, ms', sdkCpu.toFixed(0), imports.sdk.map((v) => v.toFixed(0)).join(', ')],
        ['import of `@agentrace/sdk` after `@opentelemetry/api`: CPU, ms', sdkAfterApi.toFixed(0), imports.sdkAfterApi.map((v) => v.toFixed(0)).join(', ')],
      ],
    ),
    '',
    `\`run -- true\` takes ${over.toFixed(0)} ms more than \`true\` (${(median(ms.again) - median(ms.bare)).toFixed(0)} ms right after another run). In one process: importing the commands' modules, then loading the BPF object (the verifier, ${phase.load.toFixed(0)} ms): ${phase.ready.toFixed(0)} ms; ` +
      `the load started first on the threadpool, the import meanwhile (what the entry point does): ${overlapped.ready.toFixed(0)} ms. Attaching every group ${phase.attach.toFixed(0)} ms. ` +
      `Detaching and freeing ${phase.close.toFixed(0)} ms (one RCU grace period per tracepoint, even in parallel): \`run\` hands its links to a helper (\`cat\`) that holds them until \`run\` has exited, so its user does not wait. While that helper releases them, the kernel holds its tracepoint lock (event_mutex, held across each grace period): a run starting then waits for it at every tracepoint it attaches, up to ~1 s more (the rows above are measured once the release is over, and right after a run).`,
    '',
    'Reproduce: `pnpm bench --only startup` (root).',
  ].join('\n');
  return {
    id: 'startup',
    title: 'Start-up: `agentrace run` and importing the SDK',
    markdown,
    goals: [
      { name: 'startup: `agentrace run -- true` over bare `true`', goal: `under ${GOAL_RUN_MS} ms`, measured: `${over.toFixed(0)} ms`, met: over < GOAL_RUN_MS },
      {
        name: 'startup: importing @agentrace/sdk, CPU',
        goal: `under ${GOAL_IMPORT_MS} ms`,
        measured: `${sdkCpu.toFixed(0)} ms in a fresh process (${median(imports.api).toFixed(0)} of them @opentelemetry/api's); ${sdkAfterApi.toFixed(0)} ms after @opentelemetry/api`,
        met: sdkCpu < GOAL_IMPORT_MS,
      },
    ],
  };
}
