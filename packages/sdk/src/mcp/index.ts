// @agentrace/sdk/mcp: MCP calls as traced calls, on either side of an MCP
// transport (the Transport of @modelcontextprotocol/sdk, 1.x and 2.x, which
// the AI SDK's MCP client takes too):
//
//   await client.connect(traceMcp(new StdioClientTransport({ command, args })));
//   await server.connect(traceMcp(new StdioServerTransport()));
//
// A request the client sends (tools/call, resources/read, prompts/get) is a
// span for as long as it is outstanding, `execute_tool {tool}` for a tool
// (the GenAI and MCP conventions), its trace context in params._meta; the
// pipe write that carries it runs under it, so the kernel ties the server's
// work to it. An outer tool span of the same tool (a framework integration's)
// is used instead of a second one. A request the server receives runs its
// handler as a traced call under the context from _meta (a SERVER span
// `tools/call {tool}`), so what the handler does in the kernel is attributed
// exactly, in the client's trace.
import { SpanKind, type Context } from '@opentelemetry/api';
import type { Attrs } from '@agentrace/protocol';
import { putAttr } from '../attributes.js';
import { toBoundedJson } from '../serialize.js';
import { sidecar } from '../runtime.js';
import { activeCall, beginCall, finishCall, outsideCalls, runInCall, type ToolCall } from '../trace-tool.js';
import { extractFrom, injectInto, type Meta } from './trace-context.js';

/** A callback property whose parameters check as a method's do (bivariantly), so every transport's own message type fits. */
type Callback<A extends unknown[]> = { bivariant(...args: A): void }['bivariant'];

/** The part of an MCP transport traced here (structurally @modelcontextprotocol/sdk's Transport). */
export interface McpTransport {
  start(): Promise<void>;
  send(message: unknown, options?: unknown): Promise<void>;
  close(): Promise<void>;
  onclose?: Callback<[]> | undefined;
  onerror?: Callback<[error: Error]> | undefined;
  onmessage?: Callback<[message: unknown, extra?: unknown]> | undefined;
  sessionId?: string | undefined;
  setProtocolVersion?: Callback<[version: string]> | undefined;
}

export interface TraceMcpOptions {
  /**
   * network.transport: 'pipe' for stdio, 'tcp' for HTTP. Default: from the
   * transport's class name (stdio: pipe; HTTP, SSE, WebSocket: tcp), else unset.
   */
  networkTransport?: 'pipe' | 'tcp' | 'quic' | 'unix';
  /** Record a tool call's arguments (gen_ai.tool.call.arguments, JSON) on the client's span. Default false. */
  captureArguments?: boolean;
}

const ATTR_OPERATION = 'gen_ai.operation.name';
const ATTR_TOOL_NAME = 'gen_ai.tool.name';
const ATTR_TOOL_TYPE = 'gen_ai.tool.type';
const ATTR_PROMPT_NAME = 'gen_ai.prompt.name';
const ATTR_ARGUMENTS = 'gen_ai.tool.call.arguments';
const ATTR_METHOD = 'mcp.method.name';
const ATTR_SESSION = 'mcp.session.id';
const ATTR_PROTOCOL_VERSION = 'mcp.protocol.version';
const ATTR_RESOURCE_URI = 'mcp.resource.uri';
const ATTR_REQUEST_ID = 'jsonrpc.request.id';
const ATTR_NETWORK_TRANSPORT = 'network.transport';
const ATTR_ERROR_TYPE = 'error.type';
const ATTR_STATUS_CODE = 'rpc.response.status_code';

/** The methods that do work in the server on the client's behalf. */
const TRACED = new Set(['tools/call', 'resources/read', 'prompts/get']);

/** Outer tool spans an MCP request has already taken over: a second request under one gets its own span. */
const claimed = new WeakSet<ToolCall>();

interface Outstanding {
  call: ToolCall;
  /** The span is a framework's: add to it, never end it. */
  borrowed: boolean;
}

interface JsonRpc {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown; uri?: unknown; _meta?: unknown; [k: string]: unknown };
  result?: unknown;
  error?: { code?: unknown; message?: unknown };
}

function asMessage(m: unknown): JsonRpc | undefined {
  return typeof m === 'object' && m !== null ? (m as JsonRpc) : undefined;
}

function idKey(id: unknown): string | undefined {
  return typeof id === 'string' || typeof id === 'number' ? `${typeof id}:${id}` : undefined;
}

function isResponse(m: JsonRpc): boolean {
  return m.method === undefined && idKey(m.id) !== undefined && ('result' in m || 'error' in m);
}

/** What a request is about: the span's name and its attributes (GenAI and MCP conventions). */
function describe(m: JsonRpc, side: 'client' | 'server'): { spanName: string; attrs: Attrs; toolName: string } {
  const method = String(m.method);
  const attrs: Attrs = { [ATTR_METHOD]: method };
  const count = { n: 0 };
  putAttr(attrs, ATTR_REQUEST_ID, String(m.id), count);
  const name = typeof m.params?.name === 'string' ? m.params.name : undefined;
  if (method === 'tools/call') {
    attrs[ATTR_OPERATION] = 'execute_tool';
    attrs[ATTR_TOOL_TYPE] = 'extension';
    if (name !== undefined) putAttr(attrs, ATTR_TOOL_NAME, name, count);
    const spanName = side === 'client' ? `execute_tool ${name ?? ''}`.trimEnd() : `tools/call ${name ?? ''}`.trimEnd();
    return { spanName, attrs, toolName: name ?? method };
  }
  if (method === 'prompts/get') {
    if (name !== undefined) putAttr(attrs, ATTR_PROMPT_NAME, name, count);
    return { spanName: `prompts/get ${name ?? ''}`.trimEnd(), attrs, toolName: name ?? method };
  }
  // resources/read: the URI is an attribute, never the name (unbounded cardinality)
  if (typeof m.params?.uri === 'string') putAttr(attrs, ATTR_RESOURCE_URI, m.params.uri, count);
  return { spanName: method, attrs, toolName: method };
}

/** How a response ends its call: a JSON-RPC error, or a tool result flagged isError. */
function outcomeOf(m: JsonRpc): { failed: boolean; attrs: Attrs; message?: string } {
  if (m.error !== undefined) {
    const code = m.error?.code;
    const attrs: Attrs = {};
    if (typeof code === 'number' || typeof code === 'string') {
      attrs[ATTR_ERROR_TYPE] = String(code);
      attrs[ATTR_STATUS_CODE] = String(code);
    }
    const message = typeof m.error?.message === 'string' ? m.error.message : undefined;
    return message === undefined ? { failed: true, attrs } : { failed: true, attrs, message };
  }
  const result = m.result as { isError?: unknown } | undefined;
  if (result?.isError === true) return { failed: true, attrs: { [ATTR_ERROR_TYPE]: 'tool_error' } };
  return { failed: false, attrs: {} };
}

const CANCELLED = 'notifications/cancelled';

/** A request cancelled by its sender (notifications/cancelled): error.type `cancelled`, the reason as the status message. */
function cancelledOutcome(m: JsonRpc): { failed: boolean; attrs: Attrs; message: string } {
  const reason = m.params?.reason;
  return { failed: true, attrs: { [ATTR_ERROR_TYPE]: 'cancelled' }, message: typeof reason === 'string' ? reason : 'cancelled' };
}

/** error.type for a thrown value: its class's name (the OTel convention), else `_OTHER`. */
function errorType(error: unknown): string {
  return error instanceof Error && error.name !== '' ? error.name : '_OTHER';
}

/** The outer tool span of this very tool, when a framework traced the tool call already. */
function outerToolCall(toolName: string): ToolCall | undefined {
  const call = activeCall();
  if (call === undefined || call.ended || claimed.has(call)) return undefined;
  const outer = call.toolName;
  // LangChain's MCP adapters may prefix the server's name: `server__tool`.
  return outer === toolName || outer.endsWith(`__${toolName}`) ? call : undefined;
}

class Tracer {
  /** Requests this side sent, by JSON-RPC id. */
  private readonly sent = new Map<string, Outstanding>();
  /** Requests this side received, by JSON-RPC id. */
  private readonly received = new Map<string, ToolCall>();
  private protocolVersion: string | undefined;

  constructor(
    private readonly inner: McpTransport,
    private readonly network: string | undefined,
    private readonly captureArguments: boolean,
  ) {}

  /** An outgoing message: a traced request is sent under its span, with its context in _meta. */
  send(message: unknown, options: unknown): Promise<void> {
    const m = asMessage(message);
    const key = idKey(m?.id);
    if (m !== undefined && key !== undefined) {
      if (isResponse(m)) {
        const call = this.received.get(key);
        if (call) {
          this.received.delete(key);
          finishCall(call, outcomeOf(m));
        }
      } else if (typeof m.method === 'string' && TRACED.has(m.method)) {
        const traced = this.startSent(m, key);
        if (traced) {
          const withMeta = { ...m, params: { ...m.params, _meta: injectInto(traced.call.ctx, { ...(m.params?._meta as Meta | undefined) }) } };
          return this.sendTraced(key, traced, () => runInCall(traced.call, () => this.inner.send(withMeta, options)));
        }
      }
    } else if (m?.method === CANCELLED) {
      // The server will not answer a request cancelled (the client's
      // timeout, an abort signal): its span ends here, or never.
      const out = this.sentFor(m);
      if (out) this.endSent(out, cancelledOutcome(m));
    }
    return this.inner.send(message, options);
  }

  /** A request that never left (the transport refused it) gets no response: its span ends with the send's error. */
  private sendTraced(key: string, out: Outstanding, send: () => Promise<void>): Promise<void> {
    const failed = (error: unknown): never => {
      if (this.sent.get(key) === out) {
        this.sent.delete(key);
        this.endSent(out, { failed: true, attrs: { [ATTR_ERROR_TYPE]: errorType(error) }, message: error instanceof Error ? error.message : String(error) });
      }
      throw error;
    };
    try {
      return send().catch(failed);
    } catch (error) {
      return failed(error);
    }
  }

  private sentFor(m: JsonRpc): Outstanding | undefined {
    const key = idKey(m.params?.requestId);
    const out = key === undefined ? undefined : this.sent.get(key);
    if (key !== undefined && out) this.sent.delete(key);
    return out;
  }

  /** An incoming message: a response ends its request's span; a traced request runs under a span of its own. */
  receive(message: unknown, extra: unknown, deliver: (message: unknown, extra: unknown) => void): void {
    const m = asMessage(message);
    const key = idKey(m?.id);
    if (m !== undefined && key !== undefined) {
      if (isResponse(m)) {
        const out = this.sent.get(key);
        if (out) {
          this.sent.delete(key);
          this.endSent(out, outcomeOf(m));
        }
      } else if (typeof m.method === 'string' && TRACED.has(m.method)) {
        const call = this.startReceived(m);
        if (call) {
          this.received.set(key, call);
          runInCall(call, () => deliver(message, extra));
          return;
        }
      }
    }
    if (m?.method === CANCELLED) {
      // The handler may go on, but its answer is never sent: the span ends now.
      const rkey = idKey(m.params?.requestId);
      const call = rkey === undefined ? undefined : this.received.get(rkey);
      if (rkey !== undefined && call) {
        this.received.delete(rkey);
        finishCall(call, cancelledOutcome(m));
      }
    }
    if (m !== undefined && isResponse(m)) this.notice(m);
    deliver(message, extra);
  }

  /** The connection is gone: what is still outstanding ends, failed. */
  closed(): void {
    for (const out of this.sent.values()) this.endSent(out, { failed: true, attrs: { [ATTR_ERROR_TYPE]: 'connection_closed' }, message: 'MCP connection closed before the response' });
    this.sent.clear();
    for (const call of this.received.values()) finishCall(call, { failed: true, attrs: { [ATTR_ERROR_TYPE]: 'connection_closed' }, message: 'MCP connection closed before the response was sent' });
    this.received.clear();
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  private common(attrs: Attrs): Attrs {
    if (this.network !== undefined) attrs[ATTR_NETWORK_TRANSPORT] = this.network;
    const session = this.inner.sessionId;
    if (typeof session === 'string' && session !== '') attrs[ATTR_SESSION] = session;
    if (this.protocolVersion) attrs[ATTR_PROTOCOL_VERSION] = this.protocolVersion;
    return attrs;
  }

  private startSent(m: JsonRpc, key: string): Outstanding | undefined {
    try {
      const { spanName, attrs, toolName } = describe(m, 'client');
      this.common(attrs);
      if (this.captureArguments && m.method === 'tools/call') {
        const json = toBoundedJson(m.params?.arguments ?? {});
        if (json !== undefined) attrs[ATTR_ARGUMENTS] = json;
      }
      const outer = m.method === 'tools/call' ? outerToolCall(toolName) : undefined;
      if (outer) {
        claimed.add(outer);
        // The framework named its tool (maybe `server__tool`) and captures
        // what it was asked to: only what the MCP request adds.
        const added: Attrs = {};
        for (const [k, v] of Object.entries(attrs)) if (!k.startsWith('gen_ai.')) added[k] = v;
        outer.span.setAttributes(added);
        const out = { call: outer, borrowed: true };
        this.sent.set(key, out);
        return out;
      }
      const call = beginCall(spanName, SpanKind.CLIENT, attrs, toolName);
      if (call === undefined) return undefined;
      const out = { call, borrowed: false };
      this.sent.set(key, out);
      return out;
    } catch {
      return undefined;
    }
  }

  private endSent(out: Outstanding, outcome: { failed: boolean; attrs: Attrs; message?: string }): void {
    if (!out.borrowed) {
      finishCall(out.call, outcome);
      return;
    }
    // The framework ends its span (and records a thrown error itself); what
    // only the response says (a tool result flagged isError) is added here.
    try {
      if (outcome.failed) out.call.span.setAttributes(outcome.attrs);
    } catch {
      // an app span processor's problem is not the agent's
    }
  }

  private startReceived(m: JsonRpc): ToolCall | undefined {
    try {
      const { spanName, attrs, toolName } = describe(m, 'server');
      this.common(attrs);
      const parent: Context | undefined = extractFrom(m.params?._meta);
      return parent ? beginCall(spanName, SpanKind.SERVER, attrs, toolName, parent) : beginCall(spanName, SpanKind.SERVER, attrs, toolName);
    } catch {
      return undefined;
    }
  }

  /** The initialize response says which protocol version the session speaks. */
  private notice(m: JsonRpc): void {
    const v = (m.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    if (typeof v === 'string') this.protocolVersion = v;
  }
}

const TRACED_TRANSPORT = Symbol('@agentrace/sdk/mcp traced');

/** network.transport from the transport's class: stdio is a pipe, the HTTP ones TCP; unknown otherwise. */
function networkOf(className: string): string | undefined {
  if (/stdio/i.test(className)) return 'pipe';
  if (/http|sse|websocket/i.test(className)) return 'tcp';
  return undefined;
}

/**
 * The transport, traced: the same object to its users (every property and
 * method not involved passes through), with MCP calls as spans (see the
 * module comment). Give it to Client.connect, Server.connect or the AI SDK's
 * createMCPClient in place of the transport. Tracing problems never reach
 * the caller; a transport traced twice is traced once.
 */
export function traceMcp<T extends McpTransport>(transport: T, options: TraceMcpOptions = {}): T {
  if ((transport as unknown as Record<symbol, unknown>)[TRACED_TRANSPORT]) return transport;
  const network = options.networkTransport ?? networkOf(transport.constructor?.name ?? '');
  const tracer = new Tracer(transport, network, options.captureArguments === true);
  // Connect now, as traceTool does: transports are made at start-up.
  try {
    sidecar();
  } catch {
    // the client reports its own problems
  }
  // The protocol layer sets these on the object it was given (this proxy)
  // before start(); start() hooks the real transport's in their place.
  const handlers: Pick<McpTransport, 'onmessage' | 'onclose' | 'onerror'> = {};
  const hook = (): void => {
    transport.onmessage = (message, extra) => tracer.receive(message, extra, (msg, ex) => handlers.onmessage?.(msg, ex));
    transport.onclose = () => {
      tracer.closed();
      handlers.onclose?.();
    };
    transport.onerror = (error) => handlers.onerror?.(error);
  };
  const own: Record<PropertyKey, unknown> = {
    [TRACED_TRANSPORT]: true,
    // A stdio transport forks its server here: the server serves every
    // later call, so it is forked as no call's work, even when the first
    // call that needs it starts it (its requests are attributed one by one).
    start: () => {
      hook();
      return outsideCalls(() => transport.start());
    },
    send: (message: unknown, opts?: unknown) => tracer.send(message, opts),
    close: () => transport.close(),
    setProtocolVersion: (version: string) => {
      tracer.setProtocolVersion(version);
      transport.setProtocolVersion?.(version);
    },
  };
  return new Proxy(transport, {
    get(target, prop) {
      if (prop === 'onmessage' || prop === 'onclose' || prop === 'onerror') return handlers[prop];
      if (Object.prototype.hasOwnProperty.call(own, prop)) return own[prop];
      // The transport itself as `this`: its getters may read private fields.
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set(target, prop, value) {
      if (prop === 'onmessage' || prop === 'onclose' || prop === 'onerror') {
        (handlers as Record<string, unknown>)[prop] = value;
        return true;
      }
      return Reflect.set(target, prop, value);
    },
    has(target, prop) {
      return prop === TRACED_TRANSPORT || Reflect.has(target, prop);
    },
  });
}
