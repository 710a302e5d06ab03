// The policy file (`--policy FILE`): YAML (JSON is YAML too), checked
// against its schema; a mistake is refused with its line and column and
// what is wrong.
//
//   version: 1
//   tools:                       # first pattern that matches the tool's name wins
//     fetch_url:
//       network:
//         mode: enforce          # enforce: denied connects and UDP sends fail with EPERM; audit: recorded only
//         dns: [127.0.0.53]      # resolvers it may query (UDP and TCP; ADDR or ADDR:PORT, [V6]:PORT)
//         allow:
//           - cidr: 127.0.0.1/32
//             ports: [8080, "9000-9100"]
//           - host: api.weather.example   # the addresses the tool's own lookups of it return
//             ports: [443]
//     run_shell:
//       exec:
//         mode: kill             # kill: a child that executes anything else dies before it runs; audit: recorded only
//         allow: [/bin/sh, df, /usr/libexec/tool/*]   # a bare name: where the sidecar's PATH finds it
//       files:
//         mode: kill             # kill: a child that opens anything else dies before it uses it; audit: recorded only
//         open: [/usr, /lib, /etc, /proc, /dev/null, /tmp]   # any open only under these (none: any open)
//         write: [/tmp, /dev/null]                            # opens for writing only under these (none: anywhere)
//     "mcp__*": { network: { mode: audit, allow: [] } }
//   default:                     # calls of tools no pattern names
//     network: { mode: audit, allow: [] }
//   outside:                     # what tracked processes do outside any tool call
//     network: { mode: audit, allow: [{ cidr: 0.0.0.0/0 }] }
//
// A tool entry takes each kind of rule it leaves out (network, exec, files)
// from the default; no rule of a kind at all means no restriction.
import fs from 'node:fs';
import { isIP } from 'node:net';
import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, type Document } from 'yaml';
import { z } from 'zod';
import { AgentraceError, ToolPatterns } from '@agentrace/protocol';

/** A policy file that cannot be used: where, and why. */
export class PolicyError extends AgentraceError {
  readonly code = 'AR_ERR_POLICY';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}${column === undefined ? '' : `:${column}`}`}: ${reason}`);
  }
}

export type RuleMode = 'enforce' | 'audit';
export type NetProtocol = 'tcp' | 'udp' | 'any';

export interface PortRange {
  from: number;
  to: number;
}

/** One allowed destination: an address block, its ports (none: every port) and protocol. */
export interface NetAllow {
  family: 4 | 6;
  /** The block's address, normalized (e.g. 10.0.0.0). */
  address: string;
  prefix: number;
  ports: PortRange[];
  protocol: NetProtocol;
}

/** A host name: what the tool's own lookups of it (getaddrinfo) return, on its ports. */
export interface HostAllow {
  /** Lower-case, no trailing dot. */
  name: string;
  ports: PortRange[];
  protocol: NetProtocol;
}

export interface NetworkRule {
  mode: RuleMode;
  allow: NetAllow[];
  hosts: HostAllow[];
  /** Resolvers the tool may query: UDP and TCP to one port (53 unless written). */
  dns: NetAllow[];
}

export type ExecMode = 'kill' | 'audit';

export interface ExecRule {
  mode: ExecMode;
  /** Programs as written: an absolute path, DIR/* (every file right in DIR), or a bare name (looked up on PATH when compiled). */
  allow: Array<{ path: string; line: number | undefined }>;
}

export interface FilesRule {
  mode: ExecMode;
  /** Prefixes any open must be under (undefined: any open may be made). Absolute, normalized, whole components. */
  open?: string[];
  /** Prefixes an open for writing must be under (undefined: anywhere). */
  write?: string[];
}

export interface ToolRules {
  network?: NetworkRule;
  exec?: ExecRule;
  files?: FilesRule;
}

export interface ToolPolicy {
  /** The pattern as written (`*` any run of characters, `?` one). */
  pattern: string;
  rules: ToolRules;
  /** Line of the pattern in the file, for decisions that name their rule. */
  line: number;
}

export interface Policy {
  file: string;
  tools: ToolPolicy[];
  default: ToolRules;
  outside: ToolRules;
}

const portSchema = z.union([
  z.number().int().min(1).max(65535),
  z.string().regex(/^\d{1,5}(-\d{1,5})?$/, 'a port range is written "FROM-TO", e.g. "8000-8100"'),
]);

const allowSchema = z
  .object({
    cidr: z.string().describe('an address or address block, e.g. 10.0.0.0/8, ::1/128, 127.0.0.1').optional(),
    host: z.string().describe('a host name, e.g. api.weather.example').optional(),
    ports: z.array(portSchema).optional(),
    protocol: z.enum(['tcp', 'udp', 'any']).optional(),
  })
  .strict()
  .refine((a) => (a.cidr === undefined) !== (a.host === undefined), 'a destination is either `cidr: BLOCK` or `host: NAME`, one of them');

const networkSchema = z
  .object({
    mode: z.enum(['enforce', 'audit']),
    allow: z.array(allowSchema).default([]),
    dns: z.array(z.string().describe('a resolver: ADDR, ADDR:PORT or [IPV6]:PORT')).default([]),
  })
  .strict();

const execSchema = z
  .object({
    mode: z.enum(['kill', 'audit'], {
      error: 'exec mode is kill (a tool\'s child that executes anything else is killed before the program runs) or audit; enforce is not possible here (no BPF LSM: an exec cannot be refused)',
    }),
    allow: z.array(z.string().min(1)),
  })
  .strict();

const filesSchema = z
  .object({
    mode: z.enum(['kill', 'audit'], {
      error: 'files mode is kill (a tool\'s child that opens anything else is killed before it uses what it opened) or audit; enforce is not possible here (no BPF LSM: an open cannot be refused)',
    }),
    open: z.array(z.string().min(1)).optional(),
    write: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .refine((f) => f.open !== undefined || f.write !== undefined, 'a files rule says where opens may be made (`open`), where opens for writing may (`write`), or both');

const rulesSchema = z
  .object({
    network: networkSchema.optional(),
    exec: execSchema.optional(),
    files: filesSchema.optional(),
  })
  .strict();

const fileSchema = z
  .object({
    version: z.literal(1),
    tools: z.record(z.string().min(1), rulesSchema).optional(),
    default: rulesSchema.optional(),
    outside: rulesSchema.optional(),
  })
  .strict();

type RawRules = z.infer<typeof rulesSchema>;

function parseCidr(text: string): { family: 4 | 6; address: string; prefix: number } | string {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) return `${JSON.stringify(text)} is not an address block (e.g. 10.0.0.0/8)`;
  const family = isIP(addr);
  if (family === 0) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? String(max)) || prefix > max) return `${JSON.stringify(text)}: the prefix length must be 0 to ${max}`;
  return { family: family as 4 | 6, address: addr, prefix };
}

/** A resolver, `ADDR`, `ADDR:PORT` or `[IPV6]:PORT` (port 53 unless written), as a one-port block. */
function parseResolver(text: string): NetAllow | string {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? (isIP(text) ? [text, text, undefined] : /^([^:]+):(\d+)$/.exec(text));
  const addr = m?.[1];
  const family = addr === undefined ? 0 : isIP(addr);
  if (!m || addr === undefined || family === 0) return `${JSON.stringify(text)} is not a resolver (ADDR, ADDR:PORT or [IPV6]:PORT)`;
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return `${JSON.stringify(text)}: the port must be 1 to 65535`;
  return { family: family as 4 | 6, address: addr, prefix: family === 4 ? 32 : 128, ports: [{ from: port, to: port }], protocol: 'any' };
}

/** An exec pattern: an absolute path, DIR/*, or a bare name; no other `*` or `?`. */
function checkExecPath(text: string): string | undefined {
  if (text.includes('\0')) return `${JSON.stringify(text)}: a path has no NUL`;
  const star = text.search(/[*?]/);
  if (star !== -1 && !(text.startsWith('/') && text.endsWith('/*') && star === text.length - 1)) {
    return `${JSON.stringify(text)}: a pattern is DIR/* (every file right in DIR); no other * or ?`;
  }
  if (!text.startsWith('/') && text.includes('/')) return `${JSON.stringify(text)}: an absolute path, DIR/*, or a bare name looked up on PATH`;
  return undefined;
}

/** A host name as a `host:` rule writes it: DNS labels, no wildcard, not an address. */
function parseHost(text: string): string | { error: string } {
  const name = text.toLowerCase().replace(/\.$/, '');
  if (isIP(name) !== 0 || isIP(text.replace(/^\[|\]$/g, '')) !== 0) return { error: `${JSON.stringify(text)} is an address: write it as \`cidr: ${text}\`` };
  if (name.includes('*')) return { error: `${JSON.stringify(text)}: no wildcards in host names (each name is matched as its lookups ask it)` };
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) {
    return { error: `${JSON.stringify(text)} is not a host name (letters, digits, - and _ in dot-separated labels of 1 to 63, at most 253 in all)` };
  }
  return name;
}

/** A files prefix: absolute, at most 247 bytes, normalized (a trailing / dropped); whole components. */
function parsePrefix(text: string): string | { error: string } {
  if (!text.startsWith('/')) return { error: `${JSON.stringify(text)}: an absolute path (files are judged by where they are, from the process's root)` };
  if (text.includes('\0') || /[*?]/.test(text)) return { error: `${JSON.stringify(text)}: a path prefix, no * or ? (/tmp holds everything under /tmp)` };
  const p = text.length > 1 ? text.replace(/\/+$/, '') : text;
  if (/\/\/|\/\.{1,2}(\/|$)/.test(p)) return { error: `${JSON.stringify(text)}: no ., .. or // (write the path they lead to)` };
  if (Buffer.byteLength(p) > 246) return { error: `${JSON.stringify(text)}: at most 246 bytes` };
  return p;
}

function parsePorts(ports: Array<number | string> | undefined): PortRange[] | string {
  if (ports === undefined) return [];
  const out: PortRange[] = [];
  for (const p of ports) {
    if (typeof p === 'number') {
      out.push({ from: p, to: p });
      continue;
    }
    const [a, b = a] = p.split('-').map(Number) as [number, number?];
    if (!(a >= 1 && b! <= 65535 && a <= b!)) return `port range ${JSON.stringify(p)} must be FROM-TO with 1 <= FROM <= TO <= 65535`;
    out.push({ from: a, to: b! });
  }
  return out;
}

class Located {
  readonly lines = new LineCounter();
  doc!: Document.Parsed;
  constructor(readonly file: string) {}

  /**
   * Line and column (1-based) of what `path` names: the key that names it
   * (a list item: the item), or, when it is missing, the key of its
   * nearest ancestor present.
   */
  at(path: ReadonlyArray<PropertyKey>): { line?: number; column?: number } {
    for (let n = path.length; n > 0; n--) {
      const parent = this.doc.getIn(path.slice(0, n - 1) as unknown[], true);
      const last = path[n - 1];
      let node: unknown;
      if (isMap(parent)) node = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last))?.key;
      else if (isSeq(parent) && typeof last === 'number') node = parent.items[last];
      if (isNode(node) && node.range) return this.pos(node.range[0]);
    }
    return this.doc.contents?.range ? this.pos(this.doc.contents.range[0]) : {};
  }

  private pos(offset: number): { line: number; column: number } {
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  fail(path: ReadonlyArray<PropertyKey>, reason: string): never {
    const { line, column } = this.at(path);
    throw new PolicyError(this.file, line, column, reason);
  }
}

function rulesOf(raw: RawRules | undefined, where: Located, path: PropertyKey[]): ToolRules {
  const rules: ToolRules = {};
  if (raw?.network) {
    const allow: NetAllow[] = [];
    const hosts: HostAllow[] = [];
    raw.network.allow.forEach((a, i) => {
      const ports = parsePorts(a.ports);
      if (typeof ports === 'string') where.fail([...path, 'network', 'allow', i, 'ports'], ports);
      if (a.host !== undefined) {
        const name = parseHost(a.host);
        if (typeof name !== 'string') where.fail([...path, 'network', 'allow', i, 'host'], name.error);
        hosts.push({ name, ports, protocol: a.protocol ?? 'any' });
        return;
      }
      const cidr = parseCidr(a.cidr!);
      if (typeof cidr === 'string') where.fail([...path, 'network', 'allow', i, 'cidr'], cidr);
      allow.push({ ...cidr, ports, protocol: a.protocol ?? 'any' });
    });
    const dns = raw.network.dns.map((text, i) => {
      const r = parseResolver(text);
      return typeof r === 'string' ? where.fail([...path, 'network', 'dns', i], r) : r;
    });
    rules.network = { mode: raw.network.mode, allow, hosts, dns };
  }
  if (raw?.files) {
    if (path[0] === 'outside' && raw.files.mode === 'kill') where.fail([...path, 'files', 'mode'], 'outside.files: mode kill would kill the agent itself; only audit is possible outside tool calls');
    const prefixes = (kind: 'open' | 'write'): string[] | undefined =>
      raw.files?.[kind]?.map((text, i) => {
        const p = parsePrefix(text);
        return typeof p === 'string' ? p : where.fail([...path, 'files', kind, i], p.error);
      });
    const open = prefixes('open');
    const write = prefixes('write');
    rules.files = { mode: raw.files.mode, ...(open ? { open } : {}), ...(write ? { write } : {}) };
  }
  if (raw?.exec) {
    if (path[0] === 'outside' && raw.exec.mode === 'kill') where.fail([...path, 'exec', 'mode'], 'outside.exec: mode kill would kill the agent itself; only audit is possible outside tool calls');
    const allow = raw.exec.allow.map((p, i) => {
      const bad = checkExecPath(p);
      if (bad) where.fail([...path, 'exec', 'allow', i], bad);
      return { path: p, line: where.at([...path, 'exec', 'allow', i]).line };
    });
    rules.exec = { mode: raw.exec.mode, allow };
  }
  return rules;
}

/** The keys the object at `path` takes, for an error about one it does not. */
function knownKeys(path: ReadonlyArray<PropertyKey>): string {
  const depth = path[0] === 'tools' ? path.length - 1 : path.length;
  const last = path[path.length - 1];
  const schema = depth === 2 && last === 'exec' ? execSchema : depth === 2 && last === 'files' ? filesSchema : ([fileSchema, rulesSchema, networkSchema][depth] ?? allowSchema);
  return Object.keys(schema.shape).join(', ');
}

/** Parses and checks a policy from its text; `file` names it in errors. */
export function parsePolicy(text: string, file: string): Policy {
  const where: Located = new Located(file);
  where.doc = parseDocument(text, { lineCounter: where.lines, uniqueKeys: true, prettyErrors: false });
  const syntax = where.doc.errors[0];
  if (syntax) {
    const pos = where.lines.linePos(syntax.pos[0]);
    throw new PolicyError(file, pos.line, pos.col, syntax.message.split('\n')[0]!);
  }
  const checked = fileSchema.safeParse(where.doc.toJS());
  if (!checked.success) {
    // An unknown key first: a misspelt one also makes its right name missing.
    const issue = checked.error.issues.find((i) => i.code === 'unrecognized_keys') ?? checked.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const path = [...issue.path, issue.keys[0]!];
      where.fail(path, `${path.join('.')}: unknown key; ${issue.path.length ? `${issue.path.join('.')} takes` : 'the file takes'} ${knownKeys(issue.path)}`);
    }
    where.fail(issue.path, `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  }
  const raw = checked.data;
  const tools: ToolPolicy[] = Object.entries(raw.tools ?? {}).map(([pattern, rules]) => ({
    pattern,
    rules: rulesOf(rules, where, ['tools', pattern]),
    line: where.at(['tools', pattern]).line ?? 0,
  }));
  return { file, tools, default: rulesOf(raw.default, where, ['default']), outside: rulesOf(raw.outside, where, ['outside']) };
}

/** Reads and parses the policy file at `file`. */
export function readPolicy(file: string): Policy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PolicyError(file, undefined, undefined, `cannot read it (${e.code ?? e.message})`);
  }
  return parsePolicy(text, file);
}

/**
 * The rules a call of `tool` runs under: the first pattern that names it,
 * each kind it leaves out taken from the default; `undefined` (a call of a
 * tool with no name) gets the default's.
 */
export function rulesFor(policy: Policy, tool: string | undefined): { rules: ToolRules; source: string } {
  const pattern = tool === undefined ? undefined : new ToolPatterns(policy.tools.map((t) => t.pattern)).match(tool);
  const match = policy.tools.find((t) => t.pattern === pattern);
  if (!match) return { rules: policy.default, source: 'default' };
  const network = match.rules.network ?? policy.default.network;
  const exec = match.rules.exec ?? policy.default.exec;
  const files = match.rules.files ?? policy.default.files;
  return { rules: { ...(network ? { network } : {}), ...(exec ? { exec } : {}), ...(files ? { files } : {}) }, source: `tools.${match.pattern}` };
}
