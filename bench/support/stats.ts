// Small numeric and formatting helpers shared by the benchmarks.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Appends `value` to the list kept under `key`. */
export function record<K>(into: Map<K, number[]>, key: K, value: number): void {
  const list = into.get(key);
  if (list) list.push(value);
  else into.set(key, [value]);
}

/** `+12` / `-3` (rounded), for differences. */
export function signed(v: number, digits = 0): string {
  const s = v.toFixed(digits);
  return v >= 0 && !s.startsWith('-') ? `+${s}` : s;
}

/** 1234567 -> "1,234,567". */
export function grouped(n: number | bigint): string {
  return n.toLocaleString('en-US');
}

/** Rotates `items` by `by` places, so interleaved rounds start with a different condition each time. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Median of the round-by-round differences a[i] - b[i]: rounds are paired, so slow drift cancels. */
export function pairedDelta(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`paired lists differ in length (${a.length}, ${b.length})`);
  return median(a.map((v, i) => v - b[i]!));
}

/** (max - min) / median: how far apart the rounds of one cell were. */
export function spread(xs: readonly number[]): number {
  return (Math.max(...xs) - Math.min(...xs)) / median(xs);
}

/** Median of the round-by-round ratios a[i] / b[i]. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`paired lists differ in length (${a.length}, ${b.length})`);
  return median(a.map((v, i) => v / b[i]!));
}
