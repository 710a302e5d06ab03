// Processes that declared themselves to the kernel: the SDK's first slot
// registration (a magic write) makes a process nobody tracked yet tracked
// from that very syscall, so a tool call made right at start-up is
// attributed without waiting for the socket's hello/welcome round trip. The
// sidecar confirms such a process when it says hello on the socket
// (SO_PEERCRED); one that does not within the grace period is forgotten,
// with the children it forked meanwhile, and counted. Declaring gives a
// process nothing over its own activity: its events only ever land under
// spans it announced itself.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Probes } from '@agentrace/bpf';
import type { ProcessTree } from './process-tree.js';

/** How long a self-declared process has to say hello. */
export const DEFAULT_GRACE_MS = 5_000;

export interface SelfDeclaredOptions {
  probes: Probes;
  tree: ProcessTree;
  log: (line: string) => void;
  graceMs?: number;
}

export class SelfDeclared {
  private readonly waiting = new Map<number, { untilMs: number; comm: string }>();
  private readonly graceMs: number;
  /** Self-declared processes forgotten because they never said hello. */
  forgotten = 0;

  constructor(private readonly opts: SelfDeclaredOptions) {
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  }

  /** The kernel reports a process that declared itself. */
  declared(pid: number, comm: string, nowMs = Date.now()): void {
    // Its hello may have been read before this event: then it is confirmed already.
    if (!this.opts.probes.isSelfDeclared(pid)) return;
    this.waiting.set(pid, { untilMs: nowMs + this.graceMs, comm });
  }

  /** The process said hello (its pid is the kernel's, from SO_PEERCRED). */
  confirmed(pid: number): void {
    this.waiting.delete(pid);
  }

  /** Forgets the processes whose grace period is over and that are still unconfirmed. */
  expire(nowMs = Date.now()): void {
    for (const [pid, w] of this.waiting) {
      if (w.untilMs > nowMs) continue;
      this.waiting.delete(pid);
      // Confirmed meanwhile (hello, or `run` tracks it), or gone: nothing to forget.
      if (!this.opts.probes.isSelfDeclared(pid)) continue;
      const family = [pid, ...this.opts.probes.trackedPids().filter((p) => p !== pid && this.opts.tree.isSelfOrDescendant(p, pid))];
      for (const p of family) this.opts.probes.untrack(p);
      if (this.forgotten++ === 0) {
        this.opts.log(
          `pid ${pid} (${commandOf(pid) ?? w.comm}) registered a thread slot but said no hello within ${this.graceMs} ms: it is no longer traced ` +
            '(an agent whose SDK cannot reach this socket? check AGENTRACE_SOCKET); further cases are counted in the shutdown line',
        );
      }
    }
  }
}

/**
 * What a process runs, by the basenames of its first two arguments
 * ("node agent.mjs"): its thread's name says less (Node 24 calls its main
 * thread MainThread). Undefined once it is gone.
 */
function commandOf(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return argv.length === 0 ? undefined : argv.slice(0, 2).map((a) => path.basename(a)).join(' ');
  } catch {
    return undefined;
  }
}
