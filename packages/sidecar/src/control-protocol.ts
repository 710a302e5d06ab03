// The control socket's protocol, shared by the sidecar's server and the
// `agentrace probes` client: one JSON request per line, one JSON response
// line per request.
import { probeGroups, type ProbeGroup } from '@agentrace/bpf';
import { AgentraceError, messageOf } from '@agentrace/protocol';

/** Groups a user may attach and detach. */
export type SwitchableGroup = Exclude<ProbeGroup, 'context'>;

/**
 * `context` publishes thread slots to the other probes; without it no event
 * can be attributed to a tool call, so it stays attached for the sidecar's life.
 */
export const switchableGroups: readonly SwitchableGroup[] = probeGroups.filter((g): g is SwitchableGroup => g !== 'context');

export type ControlOp = 'status' | 'attach' | 'detach' | 'policy-reload';
export const controlOps: readonly ControlOp[] = ['status', 'attach', 'detach', 'policy-reload'];

export interface ControlRequest {
  op: ControlOp;
  groups?: string[];
}

/** A well-formed line: op and groups not checked yet (the answer says what is wrong with them). */
export interface ParsedRequest {
  op: string;
  groups?: string[];
}

/** Stats with bigints turned into numbers (or decimal strings past 2^53). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export interface ControlResponse {
  ok: boolean;
  /** Every probe group and whether it is attached (after the request, on success or not). */
  groups?: Partial<Record<ProbeGroup, boolean>>;
  /** `status` only: the sidecar's counters (Sidecar.stats()). */
  stats?: { [k: string]: JsonValue };
  /** `policy-reload` only: the file now in force and how many rules it has. */
  policy?: { file: string; rules: number };
  error?: string;
}

/** Longest request line accepted; anything longer is not a request. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** A probe group name that is not one (or one that cannot be switched). */
export class GroupError extends AgentraceError {
  readonly code = 'AR_ERR_PROBE_GROUP';
}

/**
 * Turns user-given names (`file`, `net`, ..., `all`) into switchable groups,
 * in canonical order without duplicates. Throws GroupError with the reason.
 */
export function parseGroups(names: readonly string[]): SwitchableGroup[] {
  if (names.length === 0) throw new GroupError(`name at least one probe group: ${switchableGroups.join(', ')} or all`);
  const chosen = new Set<SwitchableGroup>();
  for (const name of names) {
    if (name === 'all') {
      for (const g of switchableGroups) chosen.add(g);
    } else if (name === 'context') {
      throw new GroupError('the context group is always attached: it carries the thread slots that attribute events to tool calls');
    } else if ((switchableGroups as readonly string[]).includes(name)) {
      chosen.add(name as SwitchableGroup);
    } else {
      throw new GroupError(`unknown probe group ${JSON.stringify(name)}; groups are ${switchableGroups.join(', ')} (or all)`);
    }
  }
  return switchableGroups.filter((g) => chosen.has(g));
}

/**
 * The `--probes` value of `agentrace sidecar`/`run`: a comma-separated list
 * of groups, `all`, or `none` (context only, to attach the rest later).
 */
export function parseProbesOption(value: string): SwitchableGroup[] {
  if (value.trim() === 'none') return [];
  return parseGroups(
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** A control request line that is not a request. */
export class MalformedRequest extends AgentraceError {
  readonly code = 'AR_ERR_CONTROL_REQUEST';
}

/**
 * Parses one request line. A line that is not a JSON object with a string
 * `op` is malformed (the connection is closed); a well-formed request with an
 * unknown op or group is answered with an error and the connection stays.
 */
export function parseRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new MalformedRequest(`not JSON: ${messageOf(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedRequest('a request is a JSON object');
  const { op, groups } = value as { op?: unknown; groups?: unknown };
  if (typeof op !== 'string') throw new MalformedRequest('a request needs a string "op"');
  if (groups !== undefined && !(Array.isArray(groups) && groups.every((g) => typeof g === 'string'))) {
    throw new MalformedRequest('"groups" is an array of strings');
  }
  return { op, ...(groups ? { groups: groups as string[] } : {}) };
}

/** JSON for counters that may be bigints: exact numbers where safe, decimal strings beyond. */
export function toJson(value: unknown): JsonValue {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toJson(v)]));
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  return null;
}
