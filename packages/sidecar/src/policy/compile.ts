// A policy file's rules as the kernel's tables (@agentrace/bpf's
// PolicyTables): each tool pattern is keyed by its hash, which the SDK puts
// in its thread slot for a call whose tool name it is the first pattern to
// match; the default and outside rules by their own ids.
import fs from 'node:fs';
import path from 'node:path';
import { address16, POLICY_DEFAULT_TOOL, POLICY_MAX_PORT_RANGES, POLICY_OUTSIDE_TOOL, type PolicyFileEntry, type PolicyHostEntry, type PolicyNetEntry, type PolicyTables, type PolicyToolEntry } from '@agentrace/bpf';
import { toolHash } from '@agentrace/protocol';
import { PolicyError, type FilesRule, type HostAllow, type NetAllow, type Policy, type ToolRules } from './policy-file.js';

export interface CompiledPolicy {
  tables: PolicyTables;
  /** What each rule id in an event names, e.g. `tools.fetch_url.network (policy.yaml:4)`. */
  rules: string[];
  /** The tools the file names, in its order (the patterns agents key their calls by). */
  tools: string[];
  /** The names of the rules that decide calls of tools the file does not name (the default's own). */
  defaultRules: string[];
}

/** The block's address as the kernel keys it (IPv4 mapped into IPv6), as a number. */
function addressBits(a: NetAllow): bigint {
  return BigInt(`0x${address16(a.address).bytes.toString('hex')}`);
}

/** Bits of the 128-bit (IPv4-mapped) address that count. */
function prefix128(a: NetAllow): number {
  return a.family === 4 ? 96 + a.prefix : a.prefix;
}

function contains(outer: NetAllow, inner: NetAllow): boolean {
  const p = prefix128(outer);
  if (p > prefix128(inner)) return false;
  const shift = BigInt(128 - p);
  return addressBits(outer) >> shift === addressBits(inner) >> shift;
}

/**
 * The kernel looks up the longest block that holds an address, and that
 * block alone decides: a block inside another also allows the other's ports
 * (every port, when the other allows every port).
 */
function netEntries(tool: number, allow: NetAllow[], where: string, file: string): PolicyNetEntry[] {
  const out: PolicyNetEntry[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    const mine = allow.filter((a) => a.protocol === 'any' || a.protocol === protocol);
    for (const a of mine) {
      const around = mine.filter((o) => contains(o, a));
      const every = around.some((o) => o.ports.length === 0);
      const ports = every ? [] : around.flatMap((o) => o.ports);
      if (ports.length > POLICY_MAX_PORT_RANGES) {
        throw new PolicyError(file, undefined, undefined, `${where}: ${a.address}/${a.prefix} allows ${ports.length} port ranges with the blocks around it (${protocol}); at most ${POLICY_MAX_PORT_RANGES}`);
      }
      out.push({ tool, protocol, address: a.address, prefix: a.prefix, ports });
    }
  }
  return out;
}

/** A tool's host names by protocol, the ports of a name written twice merged (none written: every port). */
function hostEntries(tool: number, hosts: HostAllow[], where: string, file: string): PolicyHostEntry[] {
  const out: PolicyHostEntry[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    const byName = new Map<string, HostAllow[]>();
    for (const h of hosts.filter((x) => x.protocol === 'any' || x.protocol === protocol)) byName.set(h.name, [...(byName.get(h.name) ?? []), h]);
    for (const [name, same] of byName) {
      const ports = same.some((h) => h.ports.length === 0) ? [] : same.flatMap((h) => h.ports);
      if (ports.length > POLICY_MAX_PORT_RANGES) throw new PolicyError(file, undefined, undefined, `${where}: host ${name} allows ${ports.length} port ranges (${protocol}); at most ${POLICY_MAX_PORT_RANGES}`);
      out.push({ tool, protocol, name, ports });
    }
  }
  return out;
}

/** A path and, when a link leads elsewhere, where it leads (the kernel judges a file's own path). */
function withRealPath(p: string): string[] {
  try {
    const r = fs.realpathSync(p);
    return r === p ? [p] : [p, r];
  } catch {
    return [p];
  }
}

/**
 * The paths an exec pattern stands for: itself when absolute (and its real
 * path, when a link leads elsewhere), or for a bare name every directory on
 * `PATH` that holds it (as a shell would find it) and their real paths.
 */
export function execPaths(pattern: string, envPath: string | undefined = process.env.PATH): string[] {
  if (pattern.startsWith('/')) return pattern.endsWith('/*') ? [pattern] : withRealPath(pattern);
  const found = (envPath ?? '')
    .split(':')
    .filter((d) => d.startsWith('/'))
    .map((d) => path.join(d, pattern))
    .filter((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return fs.statSync(p).isFile();
      } catch {
        return false;
      }
    });
  return [...new Set(found.flatMap(withRealPath))];
}

/** The kinds of rule, in the order their rule ids are given. */
const KINDS = ['network', 'exec', 'files'] as const;
type Kind = (typeof KINDS)[number];

/** A files rule's prefixes: `write` ones for writing, and (where `open` restricts) for any open too. */
function fileEntries(tool: number, files: FilesRule): PolicyFileEntry[] {
  const write = [...new Set((files.write ?? []).flatMap(withRealPath))];
  const open = files.open === undefined ? [] : [...new Set([...files.open, ...(files.write ?? [])].flatMap(withRealPath))];
  return [...write.map((prefix) => ({ tool, access: 'write' as const, prefix })), ...open.map((prefix) => ({ tool, access: 'open' as const, prefix }))];
}

/** Compiles a policy: each tool pattern's rules under its hash, the default's and outside's under their ids. */
export function compilePolicy(policy: Policy, envPath: string | undefined = process.env.PATH): CompiledPolicy {
  const rules = ['(none)'];
  const tables: Required<PolicyTables> = { tools: [], net: [], exec: [], hosts: [], files: [] };
  const rule = (name: string): number => rules.push(name) - 1;
  /** One entry: `rulesOf` under `tool`, each kind's decisions naming `ids`' rule. */
  const add = (tool: number, rulesOf: ToolRules, ids: Record<Kind, number>, where: string): void => {
    const { network: net, exec, files } = rulesOf;
    if (!net && !exec && !files) return;
    const entry: PolicyToolEntry = { tool, netMode: 'none', netRule: 0, execMode: 'none', execRule: 0 };
    if (net) {
      entry.netMode = net.mode;
      entry.netRule = ids.network;
      tables.net.push(...netEntries(tool, [...net.allow, ...net.dns], `${where}.network`, policy.file));
      tables.hosts.push(...hostEntries(tool, net.hosts, `${where}.network`, policy.file));
    }
    if (exec) {
      entry.execMode = exec.mode;
      entry.execRule = ids.exec;
      for (const a of exec.allow) {
        const paths = execPaths(a.path, envPath);
        if (paths.length === 0) throw new PolicyError(policy.file, a.line, undefined, `${where}.exec: ${JSON.stringify(a.path)} is not found on PATH (${envPath ?? ''}); write its absolute path`);
        tables.exec.push(...paths.map((p) => ({ tool, path: p })));
      }
    }
    if (files) {
      entry.filesMode = files.mode;
      entry.filesRule = ids.files;
      entry.filesRestricts = { open: files.open !== undefined, write: files.write !== undefined };
      tables.files.push(...fileEntries(tool, files));
    }
    tables.tools.push(entry);
  };
  /** Rule ids of the kinds `of` has, named by `name`. */
  const idsOf = (of: ToolRules, name: (kind: Kind) => string | undefined): Record<Kind, number> =>
    Object.fromEntries(KINDS.map((k) => [k, of[k] ? rule(name(k)!) : 0])) as Record<Kind, number>;
  const def = policy.default;
  const defaultIds = idsOf(def, (k) => `default.${k} (${policy.file})`);
  const seen = new Map<number, string>();
  for (const t of policy.tools) {
    // A pattern (exact or with * and ?) is keyed by its own hash: the SDK
    // writes the hash of the first pattern a call's tool name matches
    // (ToolPatterns, from the welcome's `tools`).
    const hash = toolHash(t.pattern);
    const other = seen.get(hash);
    if (other !== undefined || hash === POLICY_DEFAULT_TOOL || hash === POLICY_OUTSIDE_TOOL) {
      throw new PolicyError(policy.file, t.line, undefined, `tools.${t.pattern}: its hash collides with ${other ?? 'a reserved id'}; rename one`);
    }
    seen.set(hash, t.pattern);
    const where = `tools.${t.pattern}`;
    const loc = `(${policy.file}:${t.line})`;
    // a kind the tool leaves out is the default's, under a name that says for whom
    const merged: ToolRules = Object.fromEntries(KINDS.map((k) => [k, t.rules[k] ?? def[k]]));
    const ids = idsOf(merged, (k) => (t.rules[k] ? `${where}.${k} ${loc}` : `default.${k} (${policy.file}), for ${where} ${loc}`));
    add(hash, merged, ids, where);
  }
  add(POLICY_DEFAULT_TOOL, def, defaultIds, 'default');
  const out = policy.outside;
  add(POLICY_OUTSIDE_TOOL, out, idsOf(out, (k) => `outside.${k} (${policy.file})`), 'outside');
  return { tables, rules, tools: policy.tools.map((t) => t.pattern), defaultRules: KINDS.map((k) => defaultIds[k]).filter((r) => r !== 0).map((r) => rules[r]!) };
}
