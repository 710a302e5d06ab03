// The uprobes agentrace puts in agents' binaries: libuv's threadpool in a node
// binary (the work-item rung) and getaddrinfo(3) in a libc (name lookups).
// What cannot be hooked is reported, not thrown: the rest of the ladder works
// without it.
import { native, type NativeBpfObject } from './native.js';
import type { programs } from './abi.generated.js';
import { messageOf } from '@agentrace/protocol';

type ProgramName = (typeof programs)[number];
const WORK_SUBMIT: ProgramName = 'work_submit';
const WORK_RUN: ProgramName = 'work_run';
const DNS_ENTER: ProgramName = 'dns_getaddrinfo_enter';
const DNS_EXIT: ProgramName = 'dns_getaddrinfo_exit';

/**
 * libuv functions the work-item rung hooks in a node binary: where work is
 * submitted, and the functions threadpool threads run work items with.
 */
export const workSubmitFunction = 'uv__work_submit';
export const workRunFunctions = [
  'uv__fs_work',
  'uv__getaddrinfo_work',
  'uv__getnameinfo_work',
  'uv__queue_work',
  'uv__random_work',
] as const;

export interface WorkProbesResult {
  binaryPath: string;
  /** Functions hooked. */
  attached: string[];
  /** Functions that could not be hooked, and why. */
  missing: Array<{ func: string; reason: string }>;
  /** The binary was read and has no libuv threadpool to hook (not a node, or stripped): trying it again changes nothing. */
  noThreadpool: boolean;
}

/**
 * Hooks libuv's threadpool in `binaryPath` (a node binary, as found through
 * /proc/PID/exe), so work submitted under a span (fs.promises, dns.lookup,
 * zlib, crypto) is attributed on the threadpool thread that runs it.
 * Idempotent per binary. A function that cannot be hooked is reported, not
 * thrown: the rest of the ladder still works without it.
 */
export function attachWorkProbes(obj: NativeBpfObject, binaryPath: string): WorkProbesResult {
  const result: WorkProbesResult = { binaryPath, attached: [], missing: [], noThreadpool: false };
  // One pass over the symbol table for all of them (libbpf would read it per probe).
  let offsets: Record<string, number>;
  try {
    offsets = native().resolveFunctions(binaryPath, [workSubmitFunction, ...workRunFunctions]);
  } catch (err) {
    result.missing.push({ func: workSubmitFunction, reason: messageOf(err) });
    return result;
  }
  result.noThreadpool = offsets[workSubmitFunction] === undefined;
  const hook = (prog: string, func: string): void => {
    const offset = offsets[func];
    if (offset === undefined) {
      result.missing.push({ func, reason: `no function symbol ${func} in ${binaryPath} (is the binary stripped?)` });
      return;
    }
    try {
      obj.attachUprobe(prog, binaryPath, func, false, offset);
      result.attached.push(func);
    } catch (err) {
      result.missing.push({ func, reason: messageOf(err) });
    }
  };
  hook(WORK_SUBMIT, workSubmitFunction);
  if (result.missing.length > 0) return result; // nothing to carry without the submit hook
  for (const func of workRunFunctions) hook(WORK_RUN, func);
  return result;
}

/**
 * Hooks getaddrinfo(3) in `libcPath` (the libc a tracked process maps), so
 * name lookups become dns.lookup events. Idempotent per library; returns
 * why not when it cannot.
 */
export function attachDnsProbes(obj: NativeBpfObject, libcPath: string): { ok: true } | { ok: false; reason: string } {
  try {
    obj.attachUprobe(DNS_ENTER, libcPath, 'getaddrinfo');
    obj.attachUprobe(DNS_EXIT, libcPath, 'getaddrinfo', true);
    return { ok: true };
  } catch (err) {
    obj.detachUprobe(DNS_ENTER, libcPath, 'getaddrinfo');
    return { ok: false, reason: messageOf(err) };
  }
}
