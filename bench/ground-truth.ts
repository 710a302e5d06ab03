// Attribution against ground truth, as tables: N tool calls (8, 32, 64) run
// at once in one agent process, on one thread and split over two
// worker_threads, on Node 20 and Node 24; each call's opens, connects, HTTP
// requests, DNS lookup, child process and file I/O are looked up in what
// the real sidecar exported, and scored per kind: precision (spans under
// the right tool call / spans found) and recall (actions found under their
// own tool call / actions). Then, with N=64, the "beside" run of the test:
// background work (every step in a loop outside any tool call, while the
// calls run), which must not be exported under any call, and callbacks that
// one call runs synchronously in another call's async scope
// (AsyncResource.runInAsyncScope). The harness is
// test/support/ground-truth.ts, shared with test/ground-truth.test.ts.
//
//   node --import tsx bench/ground-truth.ts       (root; Node 24 from
//   AGENTRACE_NODE24 or .cache/node24, fetched by scripts/node24.sh)
//   N=8,32 RUNTIMES=20 node --import tsx bench/ground-truth.ts   to run less
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bpfUnavailableReason } from '@agentrace/bpf';
import { GroundTruthLab, KINDS, pct, planned, reasonFor, table, untracedTable, type Kind, type RunResult } from '../test/support/ground-truth.js';

const SIZES = (process.env['N'] ?? '8,32,64').split(',').map(Number);
const LAYOUTS = [0, 2];

function runtimes(): Array<[string, string]> {
  const out: Array<[string, string]> = [[`Node ${process.version}`, process.execPath]];
  const cached = fileURLToPath(new URL('../.cache/node24/bin/node', import.meta.url));
  const node24 = process.env['AGENTRACE_NODE24'] ?? (fs.existsSync(cached) ? cached : undefined);
  if (node24) out.push(['Node 24', node24]);
  else console.error('Node 24 not found (scripts/node24.sh fetches it): Node 20 only');
  const only = process.env['RUNTIMES'];
  return only ? out.filter(([label]) => only.split(',').some((v) => label.includes(v))) : out;
}

function layoutName(workers: number): string {
  return workers ? `${workers} worker threads` : 'one thread';
}

function cell(r: RunResult, kind: Kind): string {
  const s = r.scored.scores[kind];
  return `${pct(s.precision)} / ${pct(s.recall)}`;
}

function check(r: RunResult, what: string): void {
  if (r.exitCode !== 0) throw new Error(`${what}: the agent failed (exit ${r.exitCode}, ${r.signal ?? ''}):\n${r.stderr}`);
}

async function main(): Promise<void> {
  const reason = bpfUnavailableReason();
  if (reason !== null) {
    console.error(`bench/ground-truth: needs BPF (run as root): ${reason}`);
    process.exitCode = 1;
    return;
  }
  const maxN = Math.max(...SIZES);
  const lab = await GroundTruthLab.start(maxN);
  const notes = new Set<string>();
  try {
    console.log(`# Attribution against ground truth (${new Date().toISOString().slice(0, 10)})\n`);
    console.log('Cells: precision / recall. Rung: which rung of the ladder attributed the spans (largest N).\n');
    const background: Array<[string, RunResult]> = [];
    for (const [label, node] of runtimes()) {
      for (const workers of LAYOUTS) {
        const runs: RunResult[] = [];
        for (const n of SIZES) {
          const r = await lab.run({ node, calls: n, workers, tag: `b${runs.length}-${workers}-${label.replace(/\W+/g, '')}` });
          check(r, `${label}, ${layoutName(workers)}, N=${n}`);
          runs.push(r);
          for (const kind of KINDS) {
            const why = reasonFor(kind, r.scored.scores[kind], r.scored);
            if (why) notes.add(`${label}, ${layoutName(workers)}, N=${n}, ${kind}: ${why}`);
          }
        }
        const agent = runs[0]!.report?.node ?? label;
        console.log(`## ${agent}, ${layoutName(workers)}\n`);
        console.log(`| kind | ${SIZES.map((n) => `N=${n}`).join(' | ')} | rung (N=${SIZES.at(-1)}) |`);
        console.log(`| --- | ${SIZES.map(() => '---').join(' | ')} | --- |`);
        for (const kind of KINDS.filter((k) => planned(runs[0]!.plan, k))) {
          const rungs = Object.entries(runs.at(-1)!.scored.scores[kind].rungs)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ');
          console.log(`| ${kind} | ${runs.map((r) => cell(r, kind)).join(' | ')} | ${rungs || '-'} |`);
        }
        const drops = runs.map((r) => r.stats.probes.ringbufDrops).reduce((a, b) => a + b, 0n);
        const ms = runs.map((r) => Math.max(...(r.report?.threads.map((t) => t.ms ?? 0) ?? [0])).toFixed(0));
        console.log(
          `\nspans exported: ${runs.map((r) => r.spans.length).join(', ')}; ring-buffer drops: ${drops}; calls took ${ms.join(', ')} ms\n`,
        );
      }
      for (const workers of LAYOUTS) {
        const r = await lab.run({
          node,
          calls: maxN,
          workers,
          tag: `bg-${workers}-${label.replace(/\W+/g, '')}`,
          background: true,
          nestedScopes: true,
        });
        check(r, `${label}, ${layoutName(workers)}, background`);
        background.push([`${r.report?.node ?? label}, ${layoutName(workers)}`, r]);
      }
    }

    console.log(`## Beside the calls: work outside any tool call, callbacks in another call's scope (N=${maxN})\n`);
    for (const [what, r] of background) {
      console.log(`### ${what}\n`);
      const rounds = r.report?.threads.map((t) => t.backgroundRounds ?? 0).join(' + ');
      console.log(`Background rounds (every step once per round, outside any call): ${rounds}\n`);
      console.log(untracedTable(r.scored));
      console.log('\nThe calls meanwhile:\n');
      console.log(table(r.scored));
      console.log('');
      for (const kind of KINDS) {
        const why = reasonFor(kind, r.scored.scores[kind], r.scored);
        if (why) notes.add(`${what}, with background and nested scopes, ${kind}: ${why}`);
      }
    }
    if (notes.size) {
      console.log('## Under 100%, and why\n');
      for (const n of notes) console.log(`- ${n}`);
    }
  } finally {
    await lab.close();
  }
}

await main();
