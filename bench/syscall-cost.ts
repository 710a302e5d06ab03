// Cost per syscall with agentrace's probes detached, attached but the process
// untracked (what every other process on the host pays), and attached with the
// process tracked. All conditions run interleaved in one run; the figures are
// medians over rounds, and the comparison is the ratio to "detached".
//
//   pnpm bench          (as root; builds bench/syscall_loop.c with cc)
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Probes, bpfUnavailableReason } from '@agentrace/bpf';

const here = path.dirname(fileURLToPath(import.meta.url));
const loopBin = path.join(here, '.build', 'syscall_loop');
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const OPS: Record<string, number> = { getppid: 2_000_000, open: 200_000, write: 1_000_000, connect: 500_000 };
type Condition = 'detached' | 'untracked' | 'tracked';
const CONDITIONS: Condition[] = ['detached', 'untracked', 'tracked'];

function build(): void {
  fs.mkdirSync(path.dirname(loopBin), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-o', loopBin, path.join(here, 'syscall_loop.c')], { stdio: 'inherit' });
}

async function runLoop(op: string, n: number, probes: Probes, cond: Condition): Promise<number> {
  const child = spawn(loopBin, [op, String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  if (cond === 'tracked') {
    probes.track(child.pid!);
    probes.setThreadSpan(child.pid!, child.pid!, { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) });
  }
  child.stdin.end('go\n');
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`syscall_loop ${op} exited with ${code}`);
  return Number(out.trim());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const reason = bpfUnavailableReason();
  if (reason) {
    console.error(`cannot benchmark: ${reason}`);
    process.exit(1);
  }
  build();
  const probes = Probes.load({ ringBufferBytes: 64 * 1024 * 1024 });
  let consumed = 0;
  probes.onEvents((events) => (consumed += events.length));
  const results = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const cond of CONDITIONS) {
      if (cond === 'detached') probes.detach('all');
      else probes.attach('all');
      for (const [op, n] of Object.entries(OPS)) {
        const ns = await runLoop(op, n, probes, cond);
        const key = `${op}/${cond}`;
        results.set(key, [...(results.get(key) ?? []), ns]);
      }
    }
  }
  probes.drain();
  const stats = probes.stats();
  probes.close();

  console.log(`syscall cost, ns per operation (median of ${ROUNDS} interleaved rounds)`);
  console.log(`node ${process.version}, kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}\n`);
  const rows = [['operation', 'detached', 'attached, untracked', 'attached, tracked']];
  for (const op of Object.keys(OPS)) {
    const base = median(results.get(`${op}/detached`)!);
    const cells = CONDITIONS.map((c) => {
      const v = median(results.get(`${op}/${c}`)!);
      return c === 'detached' ? v.toFixed(0) : `${v.toFixed(0)} (x${(v / base).toFixed(2)}, +${(v - base).toFixed(0)})`;
    });
    const label: Record<string, string> = {
      getppid: 'getppid (no probe on it)',
      open: 'open+close /dev/null',
      write: 'write 1 byte to /dev/null',
      connect: 'connect (AF_UNIX, ENOENT)',
    };
    rows.push([label[op] ?? op, ...cells]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(
    `\nevents: ${stats.events} written, ${consumed} consumed, ${stats.ringbufDrops} dropped (ring buffer full)`,
  );
}

await main();
