// Anything thrown, as the sidecar reports it. (@agentrace/bpf types what its
// addon throws: BpfError, isBpfError.)

/** The message of anything thrown (an Error's message, else its text). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown, as an Error (the same one when it is one). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
