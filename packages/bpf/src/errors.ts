// What this package throws, typed. Every libbpf or system failure of the
// native addon is a BpfError (the addon instantiates this class, see
// native.ts): its message names the call, the errno and what to do; it
// carries the errno's name and number, and the lines libbpf logged meanwhile
// (the verifier's explanation, say).
import { AgentraceError } from '@agentrace/protocol';

export class BpfError extends AgentraceError {
  readonly code = 'AR_ERR_BPF';
  constructor(
    message: string,
    /** The errno's name, e.g. "EPERM". */
    readonly errnoName: string,
    /** The errno, positive. */
    readonly errno: number,
    /** What libbpf logged during the failed call ("" when nothing). */
    readonly libbpfLog: string,
  ) {
    super(message);
  }
}

export function isBpfError(err: unknown): err is BpfError {
  return err instanceof BpfError;
}

/** The native addon cannot be loaded (not built, or built for another Node). */
export class AddonLoadError extends AgentraceError {
  readonly code = 'AR_ERR_ADDON_LOAD';
}

/** A ring-buffer sample that does not match the ABI this decoder was generated from. */
export class DecodeError extends AgentraceError {
  readonly code = 'AR_ERR_DECODE';
}
