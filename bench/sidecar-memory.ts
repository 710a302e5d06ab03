// Sidecar memory with 10,000 tool spans in flight: the real sidecar in its
// own process; this process connects over its socket as an agent, with the
// SDK's protocol encoder, says hello, then sends `start` frames (no `end`)
// in steps. After each step a barrier (a `start` the sidecar must refuse:
// thread 0 is no thread of ours) tells when every frame before it has been
// processed; then the sidecar's VmRSS is read from /proc.
//
//   pnpm bench --only sidecar-memory        (root)
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { encodeFrame, FrameDecoder, type SidecarMessage, type SpanStartMessage } from '@agentrace/protocol';
import type { BenchOptions, BenchResult } from './support/result.js';
import { realSidecar } from './support/real-sidecar.js';
import { grouped, sleep } from './support/stats.js';
import { table } from './support/markdown.js';
import { statusKb } from './support/proc.js';
import { BYTES_PER_CONNECTION, BYTES_PER_ENDED_SPAN, BYTES_PER_SPAN_IN_FLIGHT } from '../packages/sidecar/src/limits.js';

const STEPS = [1_000, 10_000];
const CONNECTIONS = 1000;
const ENDED = 20_000;
/** The sidecar's default ended-spans limit: what it keeps of ENDED calls. */
const KEPT_ENDED = 16_384;
const GOAL_MB = 100;

const mb = (kb: number): string => (kb / 1024).toFixed(1);

/** Resident kB of process `pid` by kind of mapping, from /proc/PID/smaps. */
function residentBreakdown(pid: number): { binary: number; bpf: number; files: number; anon: number } {
  const exe = fs.realpathSync(`/proc/${pid}/exe`);
  const out = { binary: 0, bpf: 0, files: 0, anon: 0 };
  let kind: keyof typeof out = 'anon';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (mapping) {
      const name = mapping[1]!.trim();
      kind = name === exe ? 'binary' : name.startsWith('anon_inode:bpf') ? 'bpf' : name.startsWith('/') ? 'files' : 'anon';
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB/);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}

function wallTime(): [number, number] {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

function startFrame(i: number, tid: number, trace: Uint8Array): SpanStartMessage {
  return {
    t: 'start',
    tid,
    trace,
    span: randomBytes(8),
    name: 'execute_tool search_docs',
    kind: 0,
    start: wallTime(),
    attrs: {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'search_docs',
      'gen_ai.tool.call.id': `call_${i.toString(36).padStart(8, '0')}`,
      'gen_ai.tool.type': 'function',
    },
    flags: 1,
    export: true,
  };
}

/** The agent's side of one connection: frames out, sidecar messages in. */
class AgentSocket {
  readonly errors: Array<{ code: string; message: string }> = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private welcomed = false;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      for (const msg of this.decoder.push(chunk) as SidecarMessage[]) {
        if (msg.t === 'welcome') this.welcomed = true;
        else if (msg.t === 'error') this.errors.push({ code: msg.code, message: msg.message });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(path: string): Promise<AgentSocket> {
    const sock = net.connect(path);
    await once(sock, 'connect');
    return new AgentSocket(sock);
  }

  /** Resolves when `done()` holds, checked after each message; rejects after `ms`. */
  async until(done: () => boolean, what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`sidecar-memory: no ${what} from the sidecar within ${ms / 1000} s`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(100)]);
    }
  }

  async hello(): Promise<void> {
    this.sock.write(encodeFrame({ t: 'hello', sdk: 'agentrace bench', runtime: `node ${process.version}`, resource: { 'service.name': 'bench-memory' } }));
    await this.until(() => this.welcomed, 'welcome');
  }

  /** Sends what is queued, then a start the sidecar refuses; resolves once that refusal came back. */
  async barrier(trace: Uint8Array): Promise<void> {
    const seen = this.errors.length;
    this.sock.write(encodeFrame(startFrame(0, 0, trace)));
    await this.until(() => this.errors.length > seen, 'refusal of the barrier');
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  void opts; // the same in a quick run: it takes a few seconds
  const sidecar = await realSidecar();
  const pid = sidecar.pid;
  const rows: string[][] = [];
  let agent: AgentSocket | undefined;
  let finalKb = 0;
  let hwmKb = 0;
  let idleKb = 0;
  let connectedKb = 0;
  let parts = { binary: 0, bpf: 0, files: 0, anon: 0 };
  const others: AgentSocket[] = [];
  let perConnection = 0;
  let perEnded = 0;
  let perInFlight = 0;
  try {
    await sleep(500);
    idleKb = statusKb(pid, 'VmRSS');
    rows.push(['started, no agent', '0', mb(idleKb), '']);
    agent = await AgentSocket.connect(sidecar.path);
    await agent.hello();
    const trace = randomBytes(16);
    await agent.barrier(trace);
    connectedKb = statusKb(pid, 'VmRSS');
    rows.push(['agent connected (hello)', '0', mb(connectedKb), '']);
    let sent = 0;
    for (const target of STEPS) {
      for (; sent < target; sent++) agent.sock.write(encodeFrame(startFrame(sent + 1, process.pid, trace)));
      await agent.barrier(trace);
      const kb = statusKb(pid, 'VmRSS');
      rows.push([`${grouped(target)} start frames, no end`, grouped(target), mb(kb), `${(((kb - connectedKb) * 1024) / target).toFixed(0)} per span in flight`]);
    }
    const refused = agent.errors.filter((e) => !/thread 0 /.test(e.message));
    if (refused.length) throw new Error(`the sidecar refused ${refused.length} of the spans: ${refused[0]!.code} ${refused[0]!.message}`);
    // Housekeeping runs every 250 ms: read again after a few turns of it.
    await sleep(1000);
    finalKb = statusKb(pid, 'VmRSS');
    hwmKb = statusKb(pid, 'VmHWM');
    parts = residentBreakdown(pid);
    perInFlight = ((finalKb - connectedKb) * 1024) / STEPS.at(-1)!;
    rows.push([`${grouped(STEPS.at(-1)!)} in flight, 1 s later`, grouped(STEPS.at(-1)!), mb(finalKb), `${perInFlight.toFixed(0)} per span in flight`]);
    // Idle agents: one connection per agent thread.
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = await AgentSocket.connect(sidecar.path);
      await c.hello();
      others.push(c);
    }
    await sleep(500);
    const connsKb = statusKb(pid, 'VmRSS');
    perConnection = ((connsKb - finalKb) * 1024) / CONNECTIONS;
    rows.push([`${grouped(CONNECTIONS)} more agent connections (hello)`, grouped(STEPS.at(-1)!), mb(connsKb), `${perConnection.toFixed(0)} per connection`]);
    // Calls that end: the sidecar keeps the latest ones (ended-spans) for late kernel events.
    for (let i = 0; i < ENDED; i++) {
      const start = startFrame(i + 1, process.pid, trace);
      agent.sock.write(encodeFrame(start));
      agent.sock.write(encodeFrame({ t: 'end', span: start.span, end: wallTime(), status: { code: 0 } }));
      if (i % 1000 === 999) await agent.barrier(trace);
    }
    await agent.barrier(trace);
    await sleep(1000);
    const endedKb = statusKb(pid, 'VmRSS');
    perEnded = ((endedKb - connsKb) * 1024) / KEPT_ENDED;
    rows.push([`${grouped(ENDED)} calls started and ended (${grouped(KEPT_ENDED)} kept)`, grouped(STEPS.at(-1)!), mb(endedKb), `${perEnded.toFixed(0)} per kept span`]);
  } finally {
    agent?.sock.destroy();
    for (const c of others) c.sock.destroy();
    await sidecar.close();
  }

  const worstKb = Math.max(finalKb, hwmKb);
  const markdown = [
    `The sidecar's VmRSS (MB) as an agent announces tool spans that never end (each with the attributes traceTool sends); peak (VmHWM) ${mb(hwmKb)} MB.`,
    '',
    table(['state', 'spans in flight', 'sidecar RSS, MB', 'bytes (above the row before the step)'], rows),
    '',
    `What is resident with 10,000 spans in flight: ${mb(parts.anon)} MB anonymous (V8 heap, native allocations), ` +
      `${mb(parts.binary)} MB of the node binary's pages (shared with every node process on the host), ` +
      `${mb(parts.bpf)} MB of BPF maps mapped into the process (the ring buffer), ${mb(parts.files)} MB of other files (libraries, the addon).`,
    '',
    `The bound the sidecar states at start (\`heldBytes\` in packages/sidecar/src/limits.ts) counts ${BYTES_PER_CONNECTION} bytes per connection, ` +
      `${BYTES_PER_SPAN_IN_FLIGHT} per span in flight and ${BYTES_PER_ENDED_SPAN} per kept ended span; ` +
      `measured here: ${perConnection.toFixed(0)}, ${perInFlight.toFixed(0)} and ${perEnded.toFixed(0)}.`,
    '',
    'Reproduce: `pnpm bench --only sidecar-memory` (root).',
  ].join('\n');
  return {
    id: 'sidecar-memory',
    title: 'Sidecar memory with 10,000 spans in flight',
    markdown,
    goals: [
      {
        name: 'sidecar memory: 10,000 spans in flight',
        goal: `under ${GOAL_MB} MB RSS`,
        measured: `${mb(finalKb)} MB (peak ${mb(hwmKb)} MB; ${mb(idleKb)} MB idle)`,
        met: worstKb < GOAL_MB * 1024,
      },
      {
        name: 'sidecar memory: the stated bound covers what was measured',
        goal: 'measured cost per connection, span in flight and ended span at most what heldBytes() counts',
        measured: `${perConnection.toFixed(0)}/${BYTES_PER_CONNECTION}, ${perInFlight.toFixed(0)}/${BYTES_PER_SPAN_IN_FLIGHT}, ${perEnded.toFixed(0)}/${BYTES_PER_ENDED_SPAN} bytes`,
        met: perConnection <= BYTES_PER_CONNECTION && perInFlight <= BYTES_PER_SPAN_IN_FLIGHT && perEnded <= BYTES_PER_ENDED_SPAN,
      },
    ],
  };
}
