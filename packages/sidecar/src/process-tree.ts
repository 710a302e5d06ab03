// Which process descends from which, learned from fork events. The sidecar
// trusts a kernel event's span only when the event's process is the one
// that announced the span or one of its descendants.

/** How long an exited process stays known, for events still in flight. */
const EXITED_RETENTION_MS = 30_000;

export class ProcessTree {
  private readonly parents = new Map<number, number>();
  private readonly exitedAt = new Map<number, number>();

  addFork(parentPid: number, childPid: number): void {
    this.parents.set(childPid, parentPid);
    this.exitedAt.delete(childPid);
  }

  markExited(pid: number, nowMs = Date.now()): void {
    this.exitedAt.set(pid, nowMs);
  }

  parentOf(pid: number): number | undefined {
    return this.parents.get(pid);
  }

  /** True when `pid` is `ancestor` or descends from it. */
  isSelfOrDescendant(pid: number, ancestor: number): boolean {
    let cur: number | undefined = pid;
    // Bounded walk: a pid reused into a cycle must not hang the sidecar.
    for (let depth = 0; cur !== undefined && depth < 4096; depth++) {
      if (cur === ancestor) return true;
      cur = this.parents.get(cur);
    }
    return false;
  }

  /** Forgets processes that exited long enough ago. */
  prune(nowMs = Date.now()): void {
    for (const [pid, at] of this.exitedAt) {
      if (nowMs - at < EXITED_RETENTION_MS) continue;
      this.exitedAt.delete(pid);
      this.parents.delete(pid);
    }
  }

  get size(): number {
    return this.parents.size;
  }
}
