import type { WireTime } from '@agentrace/protocol';

export function wireTimeToNs(t: WireTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
