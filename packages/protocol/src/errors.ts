// The one base of every error agentrace throws on purpose. Each subclass has
// a constant `code` (AR_ERR_*), as undici's UND_ERR_* and Node's ERR_*, so a
// caller tells them apart without matching messages or importing classes.

export abstract class AgentraceError extends Error {
  abstract readonly code: `AR_ERR_${string}`;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isAgentraceError(err: unknown): err is AgentraceError {
  return err instanceof AgentraceError;
}

/** The message of anything thrown (an Error's message, else its text). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown, as an Error (the same one when it is one). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
