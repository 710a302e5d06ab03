// A policy file's rules as the kernel's tables (@agentrace/bpf's
// PolicyTables): each tool named exactly is keyed by the hash the SDK puts
// in its thread slot; the default and outside rules by their own ids.
import { address16, POLICY_DEFAULT_TOOL, POLICY_MAX_PORT_RANGES, POLICY_OUTSIDE_TOOL, type PolicyNetEntry, type PolicyTables } from '@agentrace/bpf';
import { toolHash } from '@agentrace/protocol';
import { PolicyError, type NetAllow, type Policy, type ToolRules } from './policy-file.js';

export interface CompiledPolicy {
  tables: PolicyTables;
  /** What each rule id in an event names, e.g. `tools.fetch_url.network (policy.yaml:4)`. */
  rules: string[];
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

/** Compiles a policy; a pattern with `*` or `?` is refused (not enforced yet). */
export function compilePolicy(policy: Policy): CompiledPolicy {
  const rules = ['(none)'];
  const tables: PolicyTables = { tools: [], net: [] };
  const add = (tool: number, rulesOf: ToolRules, where: string): void => {
    const net = rulesOf.network;
    if (!net) return;
    rules.push(where);
    tables.tools.push({ tool, netMode: net.mode, netRule: rules.length - 1 });
    tables.net.push(...netEntries(tool, net.allow, where, policy.file));
  };
  const seen = new Map<number, string>();
  for (const t of policy.tools) {
    if (/[*?]/.test(t.pattern)) {
      throw new PolicyError(policy.file, t.line, undefined, `tools.${t.pattern}: patterns with * or ? are not enforced yet; name each tool`);
    }
    const hash = toolHash(t.pattern);
    const other = seen.get(hash);
    if (other !== undefined || hash === POLICY_DEFAULT_TOOL || hash === POLICY_OUTSIDE_TOOL) {
      throw new PolicyError(policy.file, t.line, undefined, `tools.${t.pattern}: its hash collides with ${other ?? 'a reserved id'}; rename one`);
    }
    seen.set(hash, t.pattern);
    add(hash, t.rules, `tools.${t.pattern}.network (${policy.file}:${t.line})`);
  }
  add(POLICY_DEFAULT_TOOL, policy.default, `default.network (${policy.file})`);
  add(POLICY_OUTSIDE_TOOL, policy.outside, `outside.network (${policy.file})`);
  return { tables, rules };
}
