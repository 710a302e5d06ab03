// What the native addon throws, typed: every libbpf or system failure is an
// Error whose message names the call, the errno and what to do, with the
// errno's name as `code` (ENOENT, EPERM, ...), its number, and the lines
// libbpf logged meanwhile (the verifier's explanation, say).
export interface BpfError extends Error {
  /** The errno's name, e.g. "EPERM". */
  readonly code: string;
  readonly errno: number;
  /** What libbpf logged during the failed call ("" when nothing). */
  readonly libbpfLog: string;
}

export function isBpfError(err: unknown): err is BpfError {
  if (!(err instanceof Error)) return false;
  const e = err as Error & Partial<Record<'code' | 'errno' | 'libbpfLog', unknown>>;
  return typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.libbpfLog === 'string';
}

/** The message of anything thrown (an Error's message, else its text). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
