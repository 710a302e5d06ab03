// Shared by the otlp-*.test.ts files: an independent view of what the exporters
// produce. The official opentelemetry-proto .proto files (v1.4.0, as vendored by
// the npm package @elastic/mockotlpserver, which has nothing to do with the code
// under test) are loaded with protobufjs, and used to
//   - decode binary OTLP/protobuf request bodies,
//   - check OTLP/JSON documents field by field against the schema (camelCase
//     field names, hex ids, 64-bit integers as strings, enums as integers),
// then both are summarized into one plain shape the tests compare with what
// they sent. Also: a real node:http "collector" on 127.0.0.1 and sample spans.
import http from 'node:http';
import path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
// Types only; the module is loaded at run time through the sidecar package's dependencies.
import type * as Protobuf from '../packages/sidecar/node_modules/protobufjs/index.js';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ExportSpan } from '../packages/sidecar/src/otlp/index.js';

const sidecarRequire = createRequire(new URL('../packages/sidecar/package.json', import.meta.url));
export const protobuf = sidecarRequire('protobufjs') as typeof Protobuf;
const PROTO_DIR = path.dirname(sidecarRequire.resolve('@elastic/mockotlpserver/package.json'));

export const SCOPE_VERSION = (sidecarRequire('./package.json') as { version: string }).version;

/**
 * The official collector service types of one signal (`trace`, `metrics`,
 * `logs`): Export<Signal>ServiceRequest and ...Response.
 */
export function loadOtlpService(signal: 'trace' | 'metrics' | 'logs'): { request: Protobuf.Type; response: Protobuf.Type } {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => path.join(PROTO_DIR, target);
  root.loadSync(`opentelemetry/proto/collector/${signal}/v1/${signal}_service.proto`);
  root.resolveAll();
  const Name = { trace: 'Trace', metrics: 'Metrics', logs: 'Logs' }[signal];
  return {
    request: root.lookupType(`opentelemetry.proto.collector.${signal}.v1.Export${Name}ServiceRequest`),
    response: root.lookupType(`opentelemetry.proto.collector.${signal}.v1.Export${Name}ServiceResponse`),
  };
}

export const schema = loadOtlpService('trace');

// ---------------------------------------------------------------------------
// Decoding and checking

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);
const ID_BYTES: Record<string, number> = { traceId: 16, spanId: 8, parentSpanId: 8 };
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

/** Decodes a binary ExportTraceServiceRequest into the OTLP/JSON shape (ids as hex, 64-bit ints as strings). */
export function decodeProtobufRequest(body: Uint8Array): unknown {
  const message = schema.request.decode(body);
  const object: unknown = schema.request.toObject(message, { longs: String, enums: Number, bytes: Array, defaults: false });
  return idsToHex(object, '');
}

function idsToHex(value: unknown, key: string): unknown {
  if (Array.isArray(value)) {
    if (ID_FIELDS.has(key)) return Buffer.from(value as number[]).toString('hex');
    return value.map((v) => idsToHex(v, ''));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, idsToHex(v, k)]));
  }
  return value;
}

/** Encodes a response (e.g. partial success) with the official schema. */
export function encodeProtobufResponse(object: Record<string, unknown>): Uint8Array {
  return schema.response.encode(schema.response.fromObject(object)).finish();
}

/**
 * Checks a parsed OTLP/JSON ExportTraceServiceRequest against the schema and the
 * OTLP/JSON rules; returns the violations (empty when it conforms).
 */
export function otlpJsonViolations(document: unknown): string[] {
  const errors: string[] = [];
  checkMessage(document, schema.request, '$', errors);
  return errors;
}

function checkMessage(value: unknown, type: Protobuf.Type, where: string, errors: string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push(`${where}: expected an object for ${type.name}`);
    return;
  }
  const oneofsSet = new Map<string, string>();
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fields[key];
    if (field === undefined) {
      errors.push(`${where}.${key}: no such field in ${type.name} (OTLP/JSON uses the lowerCamelCase field names)`);
      continue;
    }
    if (field.partOf !== null && fieldValue !== null) {
      const other = oneofsSet.get(field.partOf.name);
      if (other !== undefined) errors.push(`${where}: both ${other} and ${key} of oneof ${field.partOf.name} are set`);
      oneofsSet.set(field.partOf.name, key);
    }
    if (field.repeated) {
      if (!Array.isArray(fieldValue)) {
        errors.push(`${where}.${key}: repeated field must be an array`);
        continue;
      }
      fieldValue.forEach((item: unknown, i: number) => checkValue(item, field, `${where}.${key}[${i}]`, errors));
    } else {
      checkValue(fieldValue, field, `${where}.${key}`, errors);
    }
  }
}

function checkValue(value: unknown, field: Protobuf.Field, where: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkMessage(value, resolved, where, errors);
    return;
  }
  if (resolved instanceof protobuf.Enum) {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      errors.push(`${where}: enum ${resolved.name} must be an integer (OTLP/JSON), got ${JSON.stringify(value)}`);
    } else if (!Object.values(resolved.values).includes(value)) {
      errors.push(`${where}: ${value} is not a value of enum ${resolved.name}`);
    }
    return;
  }
  const t = field.type;
  if (t === 'string') {
    if (typeof value !== 'string') errors.push(`${where}: expected a string`);
  } else if (t === 'bool') {
    if (typeof value !== 'boolean') errors.push(`${where}: expected a boolean`);
  } else if (t === 'double' || t === 'float') {
    if (typeof value !== 'number' && !(typeof value === 'string' && /^(NaN|-?Infinity)$/.test(value))) {
      errors.push(`${where}: expected a number`);
    }
  } else if (INT32.has(t)) {
    if (typeof value !== 'number' || !Number.isInteger(value)) errors.push(`${where}: expected a 32-bit integer number`);
  } else if (INT64.has(t)) {
    // protojson writes 64-bit integers as decimal strings; parsers also accept numbers.
    // Timestamps must be strings: as numbers they would lose precision.
    const isString = typeof value === 'string' && /^-?\d+$/.test(value);
    const isNumber = typeof value === 'number' && Number.isSafeInteger(value);
    if (field.name.endsWith('UnixNano') ? !isString : !(isString || isNumber)) {
      errors.push(`${where}: 64-bit integer ${field.name} must be a decimal string, got ${JSON.stringify(value)}`);
    }
  } else if (t === 'bytes') {
    const bytes = ID_BYTES[field.name];
    if (bytes !== undefined) {
      // OTLP/JSON deviates from protojson here: trace and span ids are hex, not base64
      const ok = typeof value === 'string' && (value === '' || new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(value));
      if (!ok) errors.push(`${where}: ${field.name} must be ${bytes * 2} lowercase hex digits, got ${JSON.stringify(value)}`);
    } else if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      errors.push(`${where}: bytes must be base64`);
    }
  } else {
    errors.push(`${where}: unhandled field type ${t}`);
  }
}

// ---------------------------------------------------------------------------
// One plain shape for a request, whichever encoding it came in

export type Value =
  | { s: string }
  | { i: string }
  | { d: number }
  | { b: boolean }
  | { a: Value[] }
  | { kv: Record<string, Value> }
  | { empty: true };

export interface SpanSummary {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  start: string;
  end: string;
  flags: number;
  attributes: Record<string, Value>;
  status: { code: number; message: string };
  events: { name: string; time: string; attributes: Record<string, Value> }[];
}

export interface RequestSummary {
  resources: {
    attributes: Record<string, Value>;
    scopes: { name: string; version: string; spans: SpanSummary[] }[];
  }[];
}

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : {};
}
function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
function str(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined ? '' : String(value);
}
function num(value: unknown): number {
  return typeof value === 'number' ? value : value === undefined ? 0 : Number(value);
}

function anyValue(value: unknown): Value {
  const v = obj(value);
  if ('stringValue' in v) return { s: str(v['stringValue']) };
  if ('intValue' in v) return { i: str(v['intValue']) };
  if ('doubleValue' in v) return { d: num(v['doubleValue']) };
  if ('boolValue' in v) return { b: v['boolValue'] === true };
  if ('arrayValue' in v) return { a: list(obj(v['arrayValue'])['values']).map(anyValue) };
  if ('kvlistValue' in v) return { kv: keyValues(obj(v['kvlistValue'])['values']) };
  return { empty: true };
}

function keyValues(value: unknown): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const kv of list(value)) out[str(obj(kv)['key'])] = anyValue(obj(kv)['value']);
  return out;
}

/** Summarizes a request in OTLP/JSON shape (parsed JSON, or decodeProtobufRequest's output). */
export function summarize(request: unknown): RequestSummary {
  return {
    resources: list(obj(request)['resourceSpans']).map((rs) => ({
      attributes: keyValues(obj(obj(rs)['resource'])['attributes']),
      scopes: list(obj(rs)['scopeSpans']).map((ss) => ({
        name: str(obj(obj(ss)['scope'])['name']),
        version: str(obj(obj(ss)['scope'])['version']),
        spans: list(obj(ss)['spans']).map((span) => {
          const s = obj(span);
          return {
            traceId: str(s['traceId']),
            spanId: str(s['spanId']),
            parentSpanId: str(s['parentSpanId']),
            name: str(s['name']),
            kind: num(s['kind']),
            start: str(s['startTimeUnixNano']),
            end: str(s['endTimeUnixNano']),
            flags: num(s['flags']),
            attributes: keyValues(s['attributes']),
            status: { code: num(obj(s['status'])['code']), message: str(obj(s['status'])['message']) },
            events: list(s['events']).map((e) => ({
              name: str(obj(e)['name']),
              time: str(obj(e)['timeUnixNano']),
              attributes: keyValues(obj(e)['attributes']),
            })),
          };
        }),
      })),
    })),
  };
}

/** All spans of a summary, flattened with their resource. */
export function spansOf(summary: RequestSummary): (SpanSummary & { resource: Record<string, Value>; scope: string })[] {
  return summary.resources.flatMap((r) =>
    r.scopes.flatMap((sc) => sc.spans.map((s) => ({ ...s, resource: r.attributes, scope: `${sc.name}@${sc.version}` }))),
  );
}

// ---------------------------------------------------------------------------
// Sample spans and what a receiver must see for them

export const AGENT_RESOURCE: Attributes = {
  'service.name': 'demo-agent',
  'process.pid': 4242,
  'telemetry.sdk.language': 'nodejs',
};
export const OTHER_RESOURCE: Attributes = { 'service.name': 'sidecar-self', 'host.arch': 'amd64' };

export const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
export const TOOL_SPAN_ID = 'b7ad6b7169203331';
export const PARENT_SPAN_ID = '00f067aa0ba902b7';

/** A tool span (error, with an event) and a kernel child span, plus one span of another resource. */
export function sampleSpans(): ExportSpan[] {
  return [
    {
      traceId: TRACE_ID,
      spanId: TOOL_SPAN_ID,
      parentSpanId: PARENT_SPAN_ID,
      name: 'execute_tool run_shell',
      kind: SpanKind.INTERNAL,
      startTimeNs: 1_700_000_000_123_456_789n,
      endTimeNs: 1_700_000_002_987_654_321n,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'run_shell',
        'agentrace.syscalls': 1234,
        'agentrace.big': 9_007_199_254_740_991,
        'agentrace.negative': -7,
        'agentrace.ratio': 0.25,
        'agentrace.ok': false,
        'process.command_args': ['sh', '-c', 'ls /tmp'],
        'agentrace.ports': [80, 443],
      },
      status: { code: SpanStatusCode.ERROR, message: 'exit code 2' },
      events: [
        { name: 'exception', timeNs: 1_700_000_001_000_000_001n, attributes: { 'exception.type': 'ExitError', 'exception.escaped': true } },
        { name: 'marker', timeNs: 1_700_000_001_500_000_000n },
      ],
      resource: AGENT_RESOURCE,
    },
    {
      traceId: TRACE_ID,
      spanId: 'c0ffee0000000001',
      parentSpanId: TOOL_SPAN_ID,
      name: 'connect',
      kind: SpanKind.CLIENT,
      startTimeNs: 1_700_000_000_500_000_000n,
      endTimeNs: 1_700_000_000_500_250_000n,
      attributes: { 'network.peer.address': '93.184.216.34', 'network.peer.port': 443, 'network.transport': 'tcp' },
      status: { code: SpanStatusCode.UNSET },
      resource: AGENT_RESOURCE,
      traceFlags: 1,
    },
    {
      traceId: 'ffffffffffffffffffffffffffffff01',
      spanId: 'abcdefabcdefabcd',
      name: 'sidecar.flush',
      kind: SpanKind.SERVER,
      startTimeNs: 1_000_000_000n,
      endTimeNs: 2_000_000_000n,
      attributes: {},
      status: { code: SpanStatusCode.OK },
      resource: OTHER_RESOURCE,
      traceFlags: 0,
    },
  ];
}

/** What any conforming encoding of sampleSpans() decodes to. Written out by hand from the OTLP spec. */
export function expectedSampleSummary(): RequestSummary {
  const scope = { name: 'agentrace', version: SCOPE_VERSION };
  return {
    resources: [
      {
        attributes: {
          'service.name': { s: 'demo-agent' },
          'process.pid': { i: '4242' },
          'telemetry.sdk.language': { s: 'nodejs' },
        },
        scopes: [
          {
            ...scope,
            spans: [
              {
                traceId: TRACE_ID,
                spanId: TOOL_SPAN_ID,
                parentSpanId: PARENT_SPAN_ID,
                name: 'execute_tool run_shell',
                kind: 1, // SPAN_KIND_INTERNAL
                start: '1700000000123456789',
                end: '1700000002987654321',
                flags: 0x101, // sampled + HAS_IS_REMOTE (not remote)
                attributes: {
                  'gen_ai.operation.name': { s: 'execute_tool' },
                  'gen_ai.tool.name': { s: 'run_shell' },
                  'agentrace.syscalls': { i: '1234' },
                  'agentrace.big': { i: '9007199254740991' },
                  'agentrace.negative': { i: '-7' },
                  'agentrace.ratio': { d: 0.25 },
                  'agentrace.ok': { b: false },
                  'process.command_args': { a: [{ s: 'sh' }, { s: '-c' }, { s: 'ls /tmp' }] },
                  'agentrace.ports': { a: [{ i: '80' }, { i: '443' }] },
                },
                status: { code: 2, message: 'exit code 2' }, // STATUS_CODE_ERROR
                events: [
                  {
                    name: 'exception',
                    time: '1700000001000000001',
                    attributes: { 'exception.type': { s: 'ExitError' }, 'exception.escaped': { b: true } },
                  },
                  { name: 'marker', time: '1700000001500000000', attributes: {} },
                ],
              },
              {
                traceId: TRACE_ID,
                spanId: 'c0ffee0000000001',
                parentSpanId: TOOL_SPAN_ID,
                name: 'connect',
                kind: 3, // SPAN_KIND_CLIENT
                start: '1700000000500000000',
                end: '1700000000500250000',
                flags: 0x101,
                attributes: {
                  'network.peer.address': { s: '93.184.216.34' },
                  'network.peer.port': { i: '443' },
                  'network.transport': { s: 'tcp' },
                },
                status: { code: 0, message: '' },
                events: [],
              },
            ],
          },
        ],
      },
      {
        attributes: { 'service.name': { s: 'sidecar-self' }, 'host.arch': { s: 'amd64' } },
        scopes: [
          {
            ...scope,
            spans: [
              {
                traceId: 'ffffffffffffffffffffffffffffff01',
                spanId: 'abcdefabcdefabcd',
                parentSpanId: '',
                name: 'sidecar.flush',
                kind: 2, // SPAN_KIND_SERVER
                start: '1000000000',
                end: '2000000000',
                flags: 0x100, // not sampled, HAS_IS_REMOTE
                attributes: {},
                status: { code: 1, message: '' }, // STATUS_CODE_OK
                events: [],
              },
            ],
          },
        ],
      },
    ],
  };
}

/** n simple spans of one resource, ids derived from `seed`. */
export function manySpans(n: number, seed = 1): ExportSpan[] {
  const spans: ExportSpan[] = [];
  for (let i = 0; i < n; i++) {
    spans.push({
      traceId: TRACE_ID,
      spanId: (BigInt(seed) * 1_000_000n + BigInt(i + 1)).toString(16).padStart(16, '0'),
      parentSpanId: TOOL_SPAN_ID,
      name: `op-${seed}-${i}`,
      kind: SpanKind.INTERNAL,
      startTimeNs: 1_700_000_000_000_000_000n + BigInt(i),
      endTimeNs: 1_700_000_000_000_001_000n + BigInt(i),
      attributes: { index: i },
      status: { code: SpanStatusCode.UNSET },
      resource: AGENT_RESOURCE,
    });
  }
  return spans;
}

// ---------------------------------------------------------------------------
// A real HTTP receiver

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export type Reply = (req: Received, index: number, res: http.ServerResponse) => void;

export interface Collector {
  url: string;
  received: Received[];
  /** Resolves when at least n requests have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 (`port`, default any) that records every request and answers with `reply` (default 200, empty). */
export async function startCollector(reply?: Reply, port = 0): Promise<Collector> {
  const received: Received[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      received.push(entry);
      for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve();
      if (reply) reply(entry, received.length - 1, res);
      else res.writeHead(200).end();
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/v1/traces`,
    received,
    waitFor(n: number, timeoutMs = 10_000): Promise<void> {
      if (received.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${n} requests arrived`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
