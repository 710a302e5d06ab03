// Reads what the sidecar exported: OTLP JSON lines (one
// ExportTraceServiceRequest per line) flattened into plain spans.
import fs from 'node:fs';

export interface FlatSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
  resource: Record<string, unknown>;
  /** Span events, when it has any. */
  events?: Array<{ name: string; attributes?: Record<string, unknown> }>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value: AnyValue;
}

function value(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));
}

export function readOtlpFile(file: string): FlatSpan[] {
  if (!fs.existsSync(file)) return [];
  const out: FlatSpan[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as {
      resourceSpans?: Array<{
        resource?: { attributes?: KeyValue[] };
        scopeSpans?: Array<{
          spans?: Array<{
            traceId: string;
            spanId: string;
            parentSpanId?: string;
            name: string;
            kind: number;
            attributes?: KeyValue[];
            status?: { code?: number; message?: string };
            events?: Array<{ name: string; attributes?: KeyValue[] }>;
          }>;
        }>;
      }>;
    };
    for (const rs of req.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          out.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            attributes: attrs(s.attributes),
            status: s.status ?? {},
            resource,
            ...(s.events?.length ? { events: s.events.map((e) => ({ name: e.name, attributes: attrs(e.attributes) })) } : {}),
          });
        }
      }
    }
  }
  return out;
}

/** The chain of span ids from `span` up to the root (span itself first). */
export function ancestry(span: FlatSpan, all: FlatSpan[]): FlatSpan[] {
  const byId = new Map(all.map((s) => [s.spanId, s]));
  const chain: FlatSpan[] = [];
  for (let cur: FlatSpan | undefined = span; cur && chain.length < 64; cur = byId.get(cur.parentSpanId)) chain.push(cur);
  return chain;
}

/**
 * The metric lines of the same file (ExportMetricsServiceRequest JSON): the
 * latest value of every sum data point, keyed `name{k=v,...}` (attributes
 * sorted), as cumulative sums are read.
 */
export function readOtlpSums(file: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as {
      resourceMetrics?: Array<{
        scopeMetrics?: Array<{
          metrics?: Array<{ name: string; sum?: { dataPoints?: Array<{ attributes?: KeyValue[]; asInt?: string | number; asDouble?: number }> } }>;
        }>;
      }>;
    };
    for (const rm of req.resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          for (const dp of m.sum?.dataPoints ?? []) {
            const a = attrs(dp.attributes);
            const key = `${m.name}{${Object.keys(a).sort().map((k) => `${k}=${String(a[k])}`).join(',')}}`;
            out.set(key, Number(dp.asInt ?? dp.asDouble ?? NaN));
          }
        }
      }
    }
  }
  return out;
}

export interface FlatLogRecord {
  eventName: string;
  traceId: string;
  spanId: string;
  severityNumber: number;
  body: unknown;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

/** The log lines of the same file (ExportLogsServiceRequest JSON), flattened. */
export function readOtlpLogs(file: string): FlatLogRecord[] {
  if (!fs.existsSync(file)) return [];
  const out: FlatLogRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"resourceLogs"')) continue;
    const req = JSON.parse(line) as {
      resourceLogs?: Array<{
        resource?: { attributes?: KeyValue[] };
        scopeLogs?: Array<{ logRecords?: Array<{ eventName?: string; traceId?: string; spanId?: string; severityNumber?: number; body?: AnyValue; attributes?: KeyValue[] }> }>;
      }>;
    };
    for (const rl of req.resourceLogs ?? []) {
      const resource = attrs(rl.resource?.attributes);
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          out.push({
            eventName: r.eventName ?? '',
            traceId: r.traceId ?? '',
            spanId: r.spanId ?? '',
            severityNumber: r.severityNumber ?? 0,
            body: r.body === undefined ? undefined : value(r.body),
            attributes: attrs(r.attributes),
            resource,
          });
        }
      }
    }
  }
  return out;
}
