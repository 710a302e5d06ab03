// Counts per key (per user, per process) that forget a key once it is back
// at zero, so that the keys held are only those that hold something.
export class Tally<K> {
  private readonly counts = new Map<K, number>();

  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: K, d: number): void {
    const n = this.get(key) + d;
    if (n > 0) this.counts.set(key, n);
    else this.counts.delete(key);
  }
}
