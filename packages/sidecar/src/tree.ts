// The tree `agentrace run` prints at the end: each trace, its tool calls, and
// under them what the kernel saw.
import type { ExportSpan } from './otlp/span.js';

const MAX_OPENS_SHOWN = 6;

function ms(ns: bigint): string {
  const v = Number(ns) / 1e6;
  return v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(1)} ms` : `${(v * 1000).toFixed(0)} µs`;
}

function detail(s: ExportSpan): string {
  const a = s.attributes;
  const parts: string[] = [];
  if (a['file.path'] !== undefined) parts.push(String(a['file.path']));
  if (a['process.command_args'] !== undefined) parts.push(`[${(a['process.command_args'] as string[]).join(' ')}]`);
  if (a['process.exit.code'] !== undefined) parts.push(`exit ${a['process.exit.code']}`);
  if (a['agentrace.connect.result'] !== undefined) parts.push(String(a['agentrace.connect.result']));
  if (a['agentrace.dns.result'] !== undefined) parts.push(String(a['agentrace.dns.result']));
  if (a['error.type'] !== undefined && a['agentrace.connect.result'] === undefined && a['agentrace.dns.result'] === undefined) {
    parts.push(`error ${a['error.type']}`);
  }
  // A kernel summary: what was aggregated in the kernel, and what was not emitted.
  for (const kind of ['open', 'connect', 'exec', 'read', 'write', 'send', 'recv']) {
    const calls = a[`agentrace.syscall.${kind}.calls`];
    if (calls === undefined) continue;
    const bytes = a[`agentrace.syscall.${kind}.bytes`];
    const errors = Number(a[`agentrace.syscall.${kind}.errors`] ?? 0);
    parts.push(`${kind} ${calls}×${bytes !== undefined ? ` ${bytes} B` : ''}${errors ? ` (${errors} failed)` : ''}`);
  }
  if (a['agentrace.file.open.repeated']) parts.push(`${a['agentrace.file.open.repeated']} repeated opens folded`);
  if (a['agentrace.events.capped']) parts.push(`${a['agentrace.events.capped']} events over the cap`);
  if (a['agentrace.events.dropped']) parts.push(`${a['agentrace.events.dropped']} events LOST`);
  if (a['agentrace.io.ambiguous']) parts.push(`AMBIGUOUS: ${a['agentrace.io.ambiguous']} I/O on a connection shared with other requests`);
  if (a['agentrace.attribution'] !== undefined) parts.push(`(${a['agentrace.attribution']})`);
  return parts.join('  ');
}

/** Renders spans as trees by parentSpanId; parents not among them become placeholders. */
export function renderTree(spans: ExportSpan[], names: ReadonlyMap<string, string> = new Map()): string {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map<string, ExportSpan[]>();
  const roots = new Map<string, ExportSpan[]>(); // traceId -> top spans
  const missing = new Map<string, { traceId: string; kids: ExportSpan[] }>();
  for (const s of spans) {
    const p = s.parentSpanId;
    if (p && byId.has(p)) children.set(p, [...(children.get(p) ?? []), s]);
    else if (p && names.has(p)) {
      const m = missing.get(p) ?? { traceId: s.traceId, kids: [] };
      m.kids.push(s);
      missing.set(p, m);
    } else roots.set(s.traceId, [...(roots.get(s.traceId) ?? []), s]);
  }
  const lines: string[] = [];
  const byStart = (a: ExportSpan, b: ExportSpan): number => (a.startTimeNs < b.startTimeNs ? -1 : a.startTimeNs > b.startTimeNs ? 1 : 0);
  const walk = (s: ExportSpan, prefix: string, last: boolean): void => {
    const d = detail(s);
    lines.push(`${prefix}${last ? '└─ ' : '├─ '}${s.name}  ${ms(s.endTimeNs - s.startTimeNs)}${d ? `  ${d}` : ''}`);
    walkChildren(children.get(s.spanId) ?? [], prefix + (last ? '   ' : '│  '));
  };
  // Programs open dozens of libraries and locale files; show the first few
  // opens under each span and count the rest.
  const walkChildren = (kids: ExportSpan[], prefix: string): void => {
    kids.sort(byStart);
    const opens = kids.filter((k) => k.name === 'open');
    const hidden = new Set(opens.slice(MAX_OPENS_SHOWN));
    const shown = kids.filter((k) => !hidden.has(k));
    shown.forEach((k, i) => walk(k, prefix, i === shown.length - 1 && hidden.size === 0));
    if (hidden.size > 0) {
      const failed = [...hidden].filter((k) => k.attributes['error.type'] !== undefined).length;
      lines.push(`${prefix}└─ … ${hidden.size} more opens${failed ? ` (${failed} failed)` : ''}`);
    }
  };
  const traces = new Set([...roots.keys(), ...[...missing.values()].map((m) => m.traceId)]);
  for (const traceId of traces) {
    lines.push(`trace ${traceId}`);
    const tops = roots.get(traceId) ?? [];
    const placeholders = [...missing.entries()].filter(([, m]) => m.traceId === traceId);
    const total = tops.length + placeholders.length;
    let i = 0;
    for (const t of tops.sort(byStart)) walk(t, '', ++i === total);
    for (const [id, m] of placeholders) {
      const last = ++i === total;
      lines.push(`${last ? '└─ ' : '├─ '}${names.get(id)}  (exported by the app)`);
      walkChildren(m.kids, last ? '   ' : '│  ');
    }
  }
  return lines.join('\n');
}
