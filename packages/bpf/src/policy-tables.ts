// The kernel's side of the per-tool policy (docs/POLICY.md): the tables the
// policy group's cgroup programs decide from, encoded from agentrace.h's
// layouts. Which rules a policy file makes of them is the sidecar's.
import fs from 'node:fs';
import { isIP } from 'node:net';
import { enums, structs } from './abi.generated.js';
import { layouts } from './layout.js';

/** Tool ids with a meaning of their own (AR_POLICY_DEFAULT, AR_POLICY_OUTSIDE). */
export const POLICY_DEFAULT_TOOL = 1;
export const POLICY_OUTSIDE_TOOL = 2;
export const POLICY_MAX_PORT_RANGES: number = structs.ar_net_allow.fields.ports.count;
/** Bytes of a files prefix the kernel keys (with the '/' after it). */
export const POLICY_FILE_KEY_LEN: number = structs.ar_file_key.fields.path.count;

export type PolicyMode = 'none' | 'audit' | 'enforce' | 'kill';
export type Verdict = 'none' | 'allowed' | 'audited' | 'denied';

const MODE: Record<PolicyMode, number> = {
  none: enums.ar_policy_mode.AR_POLICY_NONE,
  audit: enums.ar_policy_mode.AR_POLICY_AUDIT,
  enforce: enums.ar_policy_mode.AR_POLICY_ENFORCE,
  kill: enums.ar_policy_mode.AR_POLICY_KILL,
};

const VERDICTS: Record<number, Verdict> = {
  [enums.ar_verdict.AR_VERDICT_NONE]: 'none',
  [enums.ar_verdict.AR_VERDICT_ALLOWED]: 'allowed',
  [enums.ar_verdict.AR_VERDICT_AUDITED]: 'audited',
  [enums.ar_verdict.AR_VERDICT_DENIED]: 'denied',
};

/** An event's verdict number, named. */
export function verdictName(v: number): Verdict {
  return VERDICTS[v] ?? 'none';
}

/** A tool's rule modes: `tool` is the FNV-1a of its name, or POLICY_DEFAULT_TOOL / POLICY_OUTSIDE_TOOL. */
export interface PolicyToolEntry {
  tool: number;
  netMode: PolicyMode;
  /** Names the rule in events (the caller's index). */
  netRule: number;
  /** `enforce` is not an exec mode: this kernel cannot refuse an exec (kill or audit). */
  execMode: Exclude<PolicyMode, 'enforce'>;
  execRule: number;
  /** Files: kill (a tool's child) or audit; no open can be refused here either. */
  filesMode?: Exclude<PolicyMode, 'enforce'>;
  filesRule?: number;
  /** Which opens the files rule restricts: any (only under `open` prefixes), and those for writing (only under `write` prefixes). */
  filesRestricts?: { open: boolean; write: boolean };
}

/** A path prefix a tool may open under, for any open or for writing: whole components (`/tmp` holds /tmp/x, not /tmpfoo). */
export interface PolicyFileEntry {
  tool: number;
  access: 'open' | 'write';
  /** Absolute, normalized (no `.`, `..`, `//` or trailing `/`; the root is `/`). */
  prefix: string;
}

/**
 * A program a tool's children may execute: a path as execve is given it
 * (`/usr/bin/df`), or every file right in a directory (`/usr/bin/*`).
 */
export interface PolicyExecEntry {
  tool: number;
  path: string;
}

/** Destinations a tool may reach by one protocol: an address block and its ports (none: all). */
export interface PolicyNetEntry {
  tool: number;
  protocol: 'tcp' | 'udp';
  /** An IPv4 or IPv6 address. */
  address: string;
  /** Bits of the address that count. */
  prefix: number;
  ports: Array<{ from: number; to: number }>;
}

/**
 * A host name a tool may reach by one protocol: the addresses its own
 * lookups of the name (getaddrinfo) return, on these ports (none: all).
 */
export interface PolicyHostEntry {
  tool: number;
  protocol: 'tcp' | 'udp';
  /** A DNS name, as the rule writes it (case and a trailing dot do not count). */
  name: string;
  ports: Array<{ from: number; to: number }>;
}

export interface PolicyTables {
  tools: PolicyToolEntry[];
  net: PolicyNetEntry[];
  exec: PolicyExecEntry[];
  hosts: PolicyHostEntry[];
  files?: PolicyFileEntry[];
}

/** The policy's generations: a reload writes the one not running, then switches (ar_config.policy). */
export type PolicyGeneration = 1 | 2;

/**
 * A verdict's rule, as the kernel carries it: the index the caller gave the
 * rule, under the generation it was loaded in (the top byte), so that a
 * verdict read after a reload still names the rule that made it.
 */
export function ruleRef(raw: number): { generation: number; index: number } {
  return { generation: raw >>> 24, index: raw & 0xffffff };
}

function withGeneration(gen: PolicyGeneration, index: number): number {
  if (!Number.isInteger(index) || index < 0 || index > 0xffffff) throw new RangeError(`rule index ${index}: 0 to ${0xffffff}`);
  return ((gen << 24) | index) >>> 0;
}

/** FNV-1a (32 bits) over bytes, as the exec program hashes a path. */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

/** A host name's key word, as the lookup probe hashes the name asked: lower-case, no trailing dot. */
export function hostHash(name: string): number {
  return fnv1a(Buffer.from(name.toLowerCase().replace(/\.$/, ''), 'utf8'));
}

export function encodeHostKey(gen: PolicyGeneration, e: PolicyHostEntry): Buffer {
  const F = layouts.ar_host_key.fields;
  const k = Buffer.alloc(layouts.ar_host_key.size);
  k.writeUInt32LE(gen, F.gen);
  k.writeUInt32LE(e.tool >>> 0, F.tool);
  k.writeUInt32LE(hostHash(e.name), F.name);
  k.writeUInt32LE(e.protocol === 'udp' ? 17 : 6, F.proto);
  return k;
}

/** 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d (as the connect4 program looks it up). */
export function address16(address: string): { bytes: Buffer; v4: boolean } {
  const family = isIP(address);
  if (family === 4) {
    const b = Buffer.alloc(16);
    b[10] = 0xff;
    b[11] = 0xff;
    address.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
    return { bytes: b, v4: true };
  }
  if (family !== 6) throw new RangeError(`${JSON.stringify(address)} is not an IP address`);
  // a trailing dotted quad (::ffff:10.0.0.1) is two words
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    address = `${address.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail = ''] = address.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = address.includes('::') ? words(tail) : [];
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return { bytes: b, v4: false };
}

export function encodeToolKey(gen: PolicyGeneration, tool: number): Buffer {
  const F = layouts.ar_policy_key.fields;
  const k = Buffer.alloc(layouts.ar_policy_key.size);
  k.writeUInt32LE(gen, F.gen);
  k.writeUInt32LE(tool >>> 0, F.tool);
  return k;
}

export function encodeToolEntry(gen: PolicyGeneration, e: PolicyToolEntry): Buffer {
  const F = layouts.ar_policy_tool.fields;
  const v = Buffer.alloc(layouts.ar_policy_tool.size);
  v.writeUInt32LE(MODE[e.netMode], F.net_mode);
  v.writeUInt32LE(withGeneration(gen, e.netRule), F.net_rule);
  v.writeUInt32LE(MODE[e.execMode], F.exec_mode);
  v.writeUInt32LE(withGeneration(gen, e.execRule), F.exec_rule);
  v.writeUInt32LE(MODE[e.filesMode ?? 'none'], F.files_mode);
  v.writeUInt32LE(withGeneration(gen, e.filesRule ?? 0), F.files_rule);
  const R = enums.ar_files_flag;
  v.writeUInt32LE((e.filesRestricts?.open ? R.AR_FILES_OPEN : 0) | (e.filesRestricts?.write ? R.AR_FILES_WRITE : 0), F.files_flags);
  return v;
}

/** A files prefix as the kernel keys it: its bytes and a '/' (the root: "/"), to whole components. */
export function encodeFileKey(gen: PolicyGeneration, e: PolicyFileEntry): Buffer {
  const p = e.prefix;
  if (!p.startsWith('/') || p.includes('\0') || (p !== '/' && (p.endsWith('/') || /\/\.{0,2}(\/|$)/.test(p)))) {
    throw new RangeError(`files prefix ${JSON.stringify(p)}: an absolute path without ., .., // or a trailing /`);
  }
  const data = Buffer.from(p === '/' ? '/' : `${p}/`, 'utf8');
  if (data.length > POLICY_FILE_KEY_LEN) throw new RangeError(`files prefix ${JSON.stringify(p)}: at most ${POLICY_FILE_KEY_LEN - 1} bytes`);
  const F = layouts.ar_file_key.fields;
  const k = Buffer.alloc(layouts.ar_file_key.size);
  k.writeUInt32LE(64 + 8 * data.length, F.prefixlen);
  k.writeUInt32LE(gen, F.gen);
  k.writeUInt32LE(e.tool >>> 0, F.tool);
  data.copy(k, F.path);
  return k;
}

/** The exec program looks up the whole path, then its directory and `*`. */
export function encodeExecKey(gen: PolicyGeneration, e: PolicyExecEntry): Buffer {
  if (!e.path.startsWith('/') || e.path.includes('\0')) throw new RangeError(`exec path ${JSON.stringify(e.path)}: an absolute path, or DIR/* for every file in DIR`);
  const star = e.path.indexOf('*');
  if (star !== -1 && (star !== e.path.length - 1 || !e.path.endsWith('/*'))) throw new RangeError(`exec path ${JSON.stringify(e.path)}: \`*\` only as a whole last component (DIR/*)`);
  const F = layouts.ar_exec_key.fields;
  const k = Buffer.alloc(layouts.ar_exec_key.size);
  k.writeUInt32LE(gen, F.gen);
  k.writeUInt32LE(e.tool >>> 0, F.tool);
  k.writeUInt32LE(fnv1a(Buffer.from(e.path, 'utf8')), F.path);
  return k;
}

export function encodeNetKey(gen: PolicyGeneration, e: PolicyNetEntry): Buffer {
  const F = layouts.ar_net_key.fields;
  const { bytes, v4 } = address16(e.address);
  const max = v4 ? 32 : 128;
  if (!Number.isInteger(e.prefix) || e.prefix < 0 || e.prefix > max) throw new RangeError(`prefix /${e.prefix} of ${e.address}: 0 to ${max}`);
  const k = Buffer.alloc(layouts.ar_net_key.size);
  k.writeUInt32LE(64 + (v4 ? 96 : 0) + e.prefix, F.prefixlen);
  k.writeUInt32LE(gen, F.gen);
  k.writeUInt32LE(e.tool >>> 0, F.tool);
  bytes.copy(k, F.addr);
  return k;
}

export function encodeNetAllow(e: Pick<PolicyNetEntry, 'ports'> & { address?: string; prefix?: number; name?: string }): Buffer {
  const F = layouts.ar_net_allow.fields;
  const R = layouts.ar_port_range;
  if (e.ports.length > POLICY_MAX_PORT_RANGES) throw new RangeError(`${e.ports.length} port ranges for ${e.name ?? `${e.address}/${e.prefix}`}: at most ${POLICY_MAX_PORT_RANGES}`);
  const v = Buffer.alloc(layouts.ar_net_allow.size);
  v.writeUInt32LE(e.ports.length, F.nports);
  e.ports.forEach((p, i) => {
    const at = F.ports + i * R.size;
    v.writeUInt16LE(p.from, at + R.fields.from);
    v.writeUInt16LE(p.to, at + R.fields.to);
  });
  return v;
}

/** The cgroup v2 hierarchy's root (the unified mount): where policy programs attach to see every process. */
export function cgroup2Root(mounts = '/proc/self/mounts'): string {
  const text = fs.readFileSync(mounts, 'utf8');
  for (const line of text.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'cgroup2' && dir) return dir.replace(/\\040/g, ' ');
  }
  throw new Error(`no cgroup2 file system is mounted (${mounts}); mount one (mount -t cgroup2 none /sys/fs/cgroup) to enforce a policy`);
}
