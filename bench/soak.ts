// Soak: an agent calling tools as fast as it can for 60 s beside a normal
// agent (one call every 100 ms, each opening its own file), both against
// the real sidecar. Every 2 s: the sidecar's RSS and CPU, and the fast
// agent's progress as the sidecar sees it (spans in flight, refusals).
// At the end: the sidecar's drops per reason, and whether every call of
// the normal agent came out with its file open.
//
//   pnpm bench --only soak        (root; --quick: 15 s)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, BenchResult } from './support/result.js';
import { realSidecar } from './support/real-sidecar.js';
import { grouped, median, sleep } from './support/stats.js';
import { table } from './support/markdown.js';
import { cpuSeconds, statusKb } from './support/proc.js';
import { controlRequest } from '../packages/sidecar/src/control-client.js';

const AGENT = fileURLToPath(new URL('./support/soak-agent.mjs', import.meta.url));
const SAMPLE_MS = 4000;
const FAST_CONCURRENCY = 16;

interface Stats {
  spansInFlight: number;
  spansRefusedBy: Record<string, number>;
  attribution: { expired: number; refused: number };
  probes: { ringbufDrops: string | number; pendingFull: string | number; aggFull: string | number; trackedFull: string | number; capped: string | number };
  exporters: Record<string, { dropped: number; exported?: number }>;
  spansForgottenEarly: number;
  socket: { throttledProcess: number; throttledUser: number };
}

function startAgent(plan: object): { done: Promise<{ calls: number; stderr: string }>; pid: number } {
  const child = spawn(process.execPath, [AGENT, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`soak agent ${JSON.stringify(plan)} exited ${code}: ${err.trim()}`);
    return { calls: (JSON.parse(out.trim().split('\n').at(-1)!) as { calls: number }).calls, stderr: err };
  });
  return { done, pid: child.pid! };
}

/** The note numbers whose open came out in the OTLP file. */
async function notesExported(file: string): Promise<Set<number>> {
  const seen = new Set<number>();
  const re = /note-(\d+)/g;
  let tail = '';
  for await (const chunk of fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = tail + (chunk as string);
    for (const m of text.matchAll(re)) seen.add(Number(m[1]));
    tail = text.slice(-32);
  }
  return seen;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const seconds = opts.quick ? 15 : 60;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-soak-'));
  const otlpFile = path.join(dir, 'spans.jsonl');
  const notes = path.join(dir, 'notes');
  fs.mkdirSync(notes);
  const sidecar = await realSidecar({ otlpFile });
  const controlPath = path.join(path.dirname(sidecar.path), 'control.sock');
  const pid = sidecar.pid;
  const rows: string[][] = [];
  let normalCalls = 0;
  let fastCalls = 0;
  let final: Stats;
  let idleKb = 0;
  let peakKb = 0;
  const rss: number[] = [];
  const cpu: number[] = [];
  let fastStderr = '';
  try {
    process.env.AGENTRACE_SOCKET = sidecar.path;
    await sleep(500);
    idleKb = statusKb(pid, 'VmRSS');
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    const normal = startAgent({ mode: 'normal', seconds, dir: notes });
    const fast = startAgent({ mode: 'fast', seconds, concurrency: FAST_CONCURRENCY });
    let lastCpu = cpu0;
    let lastT = t0;
    const finished = Promise.all([normal.done, fast.done]);
    let over = false;
    void finished.then(
      () => (over = true),
      () => (over = true),
    );
    while (!over) {
      await Promise.race([sleep(SAMPLE_MS), finished.catch(() => undefined)]);
      const now = Date.now();
      let kb: number;
      let c: number;
      try {
        kb = statusKb(pid, 'VmRSS');
        c = cpuSeconds(pid);
      } catch {
        throw new Error(`the sidecar died during the soak: ${sidecar.stderr().trim()}`);
      }
      const s = (await controlRequest(controlPath, { op: 'status' })).stats as unknown as Stats;
      const pct = ((c - lastCpu) / ((now - lastT) / 1000)) * 100;
      rss.push(kb);
      cpu.push(pct);
      peakKb = Math.max(peakKb, kb);
      rows.push([((now - t0) / 1000).toFixed(0), (kb / 1024).toFixed(0), pct.toFixed(0), grouped(s.spansInFlight)]);
      lastCpu = c;
      lastT = now;
    }
    const [n, f] = await finished;
    normalCalls = n.calls;
    fastCalls = f.calls;
    fastStderr = f.stderr;
    // Let summaries settle and exporters flush before reading the totals.
    await sleep(3000);
    final = (await controlRequest(controlPath, { op: 'status' })).stats as unknown as Stats;
  } finally {
    delete process.env.AGENTRACE_SOCKET;
    await sidecar.close();
  }
  const seen = await notesExported(otlpFile);
  fs.rmSync(dir, { recursive: true, force: true });
  let missing = 0;
  for (let i = 0; i < normalCalls; i++) if (!seen.has(i)) missing++;

  const p = final.probes;
  const drops: Array<[string, number]> = [
    ['ring buffer full', Number(p.ringbufDrops)],
    ['kernel maps full', Number(p.pendingFull) + Number(p.aggFull) + Number(p.trackedFull)],
    ['unmatched (span never announced)', final.attribution.expired],
    ['refused (not the process\'s span)', final.attribution.refused],
    ...Object.entries(final.spansRefusedBy).map(([r, n]): [string, number] => [`span refused: ${r}`, n]),
    ...Object.entries(final.exporters).map(([name, e]): [string, number] => [`exporter queue full (${name.replace(/ \/.*$/, '')}; ${grouped(e.exported ?? 0)} exported)`, e.dropped]),
    ['ended spans forgotten before 30 s (ended-spans limit)', final.spansForgottenEarly],
    ['reading paused: a process over its frame rate (not a drop)', final.socket.throttledProcess],
    ['reading paused: a user over its frame rate (not a drop)', final.socket.throttledUser],
  ];
  const sdkDrops = fastStderr.match(/(\d+) frames for the sidecar were dropped/)?.[1] ?? '0';
  // Garbage makes RSS a sawtooth (V8 collects when it likes): growth shows
  // in the halves' medians, not in their peaks.
  const half = Math.floor(rss.length / 2);
  const firstHalf = median(rss.slice(0, half));
  const secondHalf = median(rss.slice(half));
  const meanCpu = cpu.reduce((a, b) => a + b, 0) / cpu.length;
  const markdown = [
    `${seconds} s: an agent calling a tool that does nothing from ${FAST_CONCURRENCY} loops as fast as it can (its spans exported by the sidecar), beside a normal agent (one call every 100 ms, each opening its own file). ` +
      `Fast agent: ${grouped(fastCalls)} calls (${grouped(Math.round(fastCalls / seconds))}/s), SDK frames dropped: ${grouped(Number(sdkDrops))}. ` +
      `Normal agent: ${normalCalls} calls, ${normalCalls - missing} with their file open exported (${missing} missing).`,
    '',
    table(['t, s', 'sidecar RSS, MB', 'sidecar CPU, % of one core', 'spans in flight'], rows),
    '',
    `Sidecar RSS: ${(idleKb / 1024).toFixed(0)} MB idle, peak ${(peakKb / 1024).toFixed(0)} MB; median ${(firstHalf / 1024).toFixed(0)} MB in the first half, ${(secondHalf / 1024).toFixed(0)} MB in the second; mean CPU ${meanCpu.toFixed(0)}% of one core.`,
    '',
    'Drops, by reason (the sidecar\'s counters at the end):',
    '',
    table(['reason', 'count'], drops.map(([r, n]) => [r, grouped(n)])),
    '',
    'Reproduce: `pnpm bench --only soak` (root; `--quick` runs 15 s).',
  ].join('\n');
  return {
    id: 'soak',
    title: 'Soak: a fast agent beside a normal one',
    markdown,
    goals: [
      {
        name: 'soak: normal agent beside a fast one',
        goal: 'every call exported with its file open',
        measured: `${normalCalls - missing}/${normalCalls}`,
        met: missing === 0 && normalCalls > 0,
      },
      {
        name: 'soak: sidecar memory under a fast agent',
        goal: 'RSS flat: second-half median within 10% of the first half',
        measured: `${(firstHalf / 1024).toFixed(0)} → ${(secondHalf / 1024).toFixed(0)} MB (peak ${(peakKb / 1024).toFixed(0)} MB)`,
        met: secondHalf <= firstHalf * 1.1,
      },
    ],
  };
}
