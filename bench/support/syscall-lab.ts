// The set-up host-tax and tracked-syscall share: the C syscall loop, the
// floor object and agentrace's probes loaded side by side in this process,
// switched between conditions so that all of them are measured in one run,
// interleaved over rounds.
import { AttrSource, Probes, readElfSymbols, readV8Layout, staticTlsOffset, type V8Layout } from '@agentrace/bpf';
import { loadFloor, type EmptyPrograms } from './floor.js';
import { loadBare } from './bare.js';
import { foreignTracingPrograms, loadedProgramIds, ownPrograms, profileLoop, withBpfStats, type ProgramProfile } from './bpf-profile.js';
import { buildLoop, iterationsFor, runLoop, type Op } from './syscall-loop.js';
import { record, rotate } from './stats.js';

export type Condition =
  /** Nothing of ours attached. */
  | 'detached'
  /** Only the floor's empty programs attached. */
  | 'floor'
  /** Empty programs on exactly the attach points of agentrace's attached programs. */
  | 'bare'
  /** Every agentrace probe attached; the loop is not tracked. */
  | 'untracked'
  /** Every agentrace probe attached; the loop's process tracked, its thread running a span. */
  | 'tracked'
  /**
   * The same, the span read by the frame rung: the loop plays a Node 24
   * thread whose call is in its V8 async context (syscall_loop.c), with
   * this node's V8 layout; nothing else tells its span.
   */
  | 'frame';

const SPAN = { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) };

export class SyscallLab {
  /** Events the probes wrote that this process consumed. */
  consumed = 0;
  /** Of those, the ones the frame rung attributed. */
  consumedByFrame = 0;
  /** This node's V8 layout, with the loop's own thread-local for the isolate; or why the frame condition cannot run. */
  readonly frameLayout: V8Layout | string;
  private readonly startDrops: bigint;
  private readonly startEvents: bigint;
  private readonly foreign = new Set<string>();

  private constructor(
    private readonly loop: string,
    private readonly floor: EmptyPrograms,
    private readonly bare: EmptyPrograms,
    readonly probes: Probes,
    /** agentrace's programs of this object, by id, for profiles. */
    private readonly programs: Map<number, string>,
    private readonly ours: Set<number>,
  ) {
    probes.onEvents((events) => {
      this.consumed += events.length;
      for (const e of events) if (e.attrSource === AttrSource.Frame) this.consumedByFrame++;
    });
    this.frameLayout = loopFrameLayout(loop);
    const s = probes.stats();
    this.startDrops = s.ringbufDrops;
    this.startEvents = s.events;
  }

  static load(): SyscallLab {
    const loop = buildLoop();
    const before = loadedProgramIds();
    const floor = loadFloor();
    let probes: Probes;
    try {
      probes = Probes.load({ ringBufferBytes: 64 * 1024 * 1024 });
    } catch (err) {
      floor.close();
      throw err;
    }
    const programs = ownPrograms(before, probes.programs());
    let bare: EmptyPrograms;
    try {
      probes.attach('all');
      bare = loadBare(probes);
      probes.detach('all');
    } catch (err) {
      probes.close();
      floor.close();
      throw err;
    }
    const ours = new Set([...ownPrograms(before, [...floor.programs, ...bare.programs]).keys(), ...programs.keys()]);
    return new SyscallLab(loop, floor, bare, probes, programs, ours);
  }

  set(condition: Condition): void {
    if (condition === 'floor' || condition === 'bare') {
      this.probes.detach('all');
      if (condition === 'floor') {
        this.bare.detach();
        this.floor.attach();
      } else {
        this.floor.detach();
        this.bare.attach();
      }
    } else {
      this.floor.detach();
      this.bare.detach();
      if (condition === 'detached') this.probes.detach('all');
      else this.probes.attach('all');
    }
  }

  /**
   * One loop in the current condition (`tracked` tracks it and sets its
   * thread's span first; `frame` tracks it and gives the kernel its V8
   * layout, and the loop puts its span in its frame).
   */
  run(op: Op, iterations: number, condition: Condition): Promise<number> {
    const layout = this.frameLayout;
    if (condition === 'frame' && typeof layout === 'string') throw new Error(`the frame condition cannot run: ${layout}`);
    const env =
      condition === 'frame' && typeof layout !== 'string'
        ? {
            AGENTRACE_BENCH_FRAME: [layout.cped, layout.undefinedRoot, layout.table, layout.fixedArrayData, layout.typedArrayData].join(','),
            AGENTRACE_BENCH_SPAN: SPAN.traceId + SPAN.spanId,
          }
        : undefined;
    return runLoop(
      this.loop,
      op,
      iterations,
      (pid) => {
        if (condition === 'tracked') {
          this.probes.track(pid);
          this.probes.setThreadSpan(pid, pid, SPAN);
        } else if (condition === 'frame' && typeof layout !== 'string') {
          this.probes.track(pid);
          this.probes.setV8Layout(pid, layout);
        }
      },
      env,
    );
  }

  /** ns per op of every op in every condition, `rounds` times, conditions rotated each round. */
  async measure(conditions: readonly Condition[], ops: readonly Op[], rounds: number, quick: boolean): Promise<Map<string, number[]>> {
    const results = new Map<string, number[]>();
    this.lookForForeignPrograms();
    for (let round = 0; round < rounds; round++) {
      for (const condition of rotate(conditions, round)) {
        this.set(condition);
        for (const op of ops) record(results, key(op, condition), await this.run(op, iterationsFor(op, quick), condition));
      }
    }
    this.set('detached');
    this.probes.drain();
    this.lookForForeignPrograms();
    return results;
  }

  /** Per-op profile of agentrace's programs in `condition` (one loop per op, bpf_stats on). */
  async profile(condition: 'untracked' | 'tracked' | 'frame', ops: readonly Op[], quick: boolean): Promise<Map<Op, ProgramProfile[]>> {
    const out = new Map<Op, ProgramProfile[]>();
    this.set(condition);
    try {
      await withBpfStats(async () => {
        for (const op of ops) {
          const n = iterationsFor(op, quick);
          out.set(op, await profileLoop(this.programs, n, () => this.run(op, n, condition)));
        }
      });
    } finally {
      this.set('detached');
      this.probes.drain();
    }
    return out;
  }

  /** Looks for tracing programs loaded by others on this host, remembered for foreignNote(). */
  lookForForeignPrograms(): void {
    for (const p of foreignTracingPrograms(this.ours)) this.foreign.add(p);
  }

  /** Events written, consumed here and lost to a full ring buffer since load. */
  eventStats(): { written: bigint; consumed: number; dropped: bigint } {
    this.probes.drain();
    const s = this.probes.stats();
    return { written: s.events - this.startEvents, consumed: this.consumed, dropped: s.ringbufDrops - this.startDrops };
  }

  /** One line on other tracing programs loaded on the host, for the results. */
  foreignNote(): string {
    const foreign = [...this.foreign];
    if (foreign.length === 0) return 'No other tracing program was loaded on the host during the run.';
    const shown = foreign.slice(0, 8).join(', ');
    return `${foreign.length} other tracing programs were loaded on the host during the run (while any of them was attached, every column paid for it): ${shown}${foreign.length > 8 ? ', …' : ''}.`;
  }

  close(): void {
    this.probes.close();
    this.floor.close();
    this.bare.close();
  }
}

/** The layout the loop plays a Node 24 thread with: this node's V8, the loop's own thread-local for its isolate. */
function loopFrameLayout(loop: string): V8Layout | string {
  const v8 = readV8Layout(process.execPath);
  if (!v8.ok) return `this node's V8 layout: ${v8.reason}`;
  const { symbols, tls } = readElfSymbols(loop, ['ar_bench_isolate'], 0);
  const isolate = symbols['ar_bench_isolate'];
  if (!isolate || isolate.type !== 'tls' || !tls) return `${loop} has no thread-local ar_bench_isolate`;
  return { ...v8.layout, isolateTls: staticTlsOffset(isolate.value, tls) };
}

export function key(op: Op, condition: Condition): string {
  return `${op}/${condition}`;
}
