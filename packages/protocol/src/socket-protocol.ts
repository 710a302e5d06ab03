// The agent <-> sidecar socket protocol: the only place its frames and
// messages are defined. Both ends import it from @agentrace/protocol.
//
// A frame is: u32 big-endian length of the rest | u8 protocol version |
// msgpack body (one message object). Anything else closes the connection.
// msgpackr's plain entry: its node entry also loads a native string
// extractor and stream classes, 30 ms of CPU more when an agent starts, for
// nothing the SDK's small frames need (the sidecar loads it itself).
import { Packr } from 'msgpackr/pack';
import { AgentraceError, messageOf } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Largest frame body either side accepts; a bigger length prefix is an error. */
export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 5;

export type AttrValue = string | number | boolean | string[] | number[] | boolean[];
export type Attrs = Record<string, AttrValue>;
/** [seconds, nanoseconds] since the Unix epoch, as OpenTelemetry's HrTime. */
export type WireTime = [number, number];

/** Client -> sidecar: first frame of a connection. */
export interface HelloMessage {
  t: 'hello';
  /** SDK name and version, e.g. "@agentrace/sdk 0.1.0". */
  sdk: string;
  /** e.g. "node v20.20.2". */
  runtime: string;
  /** Resource attributes of the agent (service.name, ...). */
  resource: Attrs;
  /**
   * This process's pid as its /proc names it (/proc/thread-self), the
   * namespace its `tid`s are in: in a container, not the sidecar's.
   */
  pid?: number;
  /** The client takes `policy` frames (a sidecar sends none to one that does not say so). */
  policy?: boolean;
  /**
   * The client keeps each call's record in V8's async context (Node with
   * AsyncContextFrame): the sidecar may give the kernel this process's V8
   * layout, and says in the welcome whether it could.
   */
  frames?: boolean;
}

/**
 * Client -> sidecar: thread `tid` registered its slot from inside its call
 * storage; did the kernel prove it can read the thread's calls from its
 * async context? Answered with a `frames` message.
 */
export interface CheckFramesMessage {
  t: 'check-frames';
  /** OS thread id (as /proc/thread-self names it). */
  tid: number;
}

/** Client -> sidecar: a tool-call span started on thread `tid` of the sending process. */
export interface SpanStartMessage {
  t: 'start';
  /** OS thread id (as /proc/thread-self names it) the span runs on. */
  tid: number;
  trace: Uint8Array; // 16 bytes
  span: Uint8Array; // 8 bytes
  parent?: Uint8Array; // 8 bytes
  name: string;
  /** @opentelemetry/api SpanKind */
  kind: number;
  start: WireTime;
  attrs: Attrs;
  /** W3C trace flags (1 = sampled). */
  flags: number;
  /** True when no app TracerProvider exports this span, so the sidecar must. */
  export: boolean;
  /**
   * False for spans that are not what their thread runs (a framework's own
   * runs around tool calls): the sidecar exports them but attributes no
   * kernel activity to them. Absent means true.
   */
  thread?: boolean;
  /**
   * True when the thread's slot is registered with the sidecar's kernel:
   * the slot then says which span runs, so the sidecar writes no thread-map
   * entry (two map syscalls per call saved). Absent means false.
   */
  slot?: boolean;
}

/** Client -> sidecar: the span ended. */
export interface SpanEndMessage {
  t: 'end';
  span: Uint8Array; // 8 bytes
  end: WireTime;
  /** @opentelemetry/api SpanStatusCode, and its message for errors. */
  status: { code: number; message?: string };
  /** Attributes added after start (error.type, results). */
  attrs?: Attrs;
}

/** Sidecar -> client: the peer's process is tracked; thread slots may be registered now. */
export interface WelcomeMessage {
  t: 'welcome';
  /** The client's pid as the kernel (and the sidecar) sees it. */
  pid: number;
  sidecar: string;
  /** The tool patterns of the policy in force, in its order (absent: no policy): see toolKey. */
  tools?: string[];
  /**
   * To a client that said `frames`: whether the kernel has this process's
   * V8 layout (then its threads register from inside their call storage and
   * send `check-frames`), or why not.
   */
  frames?: FramesAnswer;
}

/** Whether the kernel reads a thread's calls from its async context, or why not. */
export interface FramesAnswer {
  ok: boolean;
  reason?: string;
  /** The first refusal to this process: the thread told prints it (once per process, not per thread). */
  warn?: boolean;
}

/** Sidecar -> client: the answer to `check-frames`, for the thread that asked. */
export interface FramesMessage extends FramesAnswer {
  t: 'frames';
}

/**
 * Where the sidecar also leaves the policy's tool patterns (a JSON array of
 * strings), beside its socket: an agent reads it when it first connects, so
 * that calls made before the welcome arrives are keyed right too.
 */
export function toolPatternsPath(socketPath: string): string {
  return `${socketPath}.tools`;
}

/** Sidecar -> client: the policy's tool patterns changed (a reload); see toolKey. */
export interface PolicyMessage {
  t: 'policy';
  tools: string[];
}

/** Sidecar -> client: a request was refused (or, before a close, why). */
export interface ErrorMessage {
  t: 'error';
  code: WireCode;
  message: string;
}

export type ClientMessage = HelloMessage | SpanStartMessage | SpanEndMessage | CheckFramesMessage;
export type SidecarMessage = WelcomeMessage | ErrorMessage | PolicyMessage | FramesMessage;
export type Message = ClientMessage | SidecarMessage;

/**
 * Why the sidecar refused something or closed a connection, as an errno name
 * in the `error` frame:
 * - EMSGSIZE: a frame over MAX_FRAME_BYTES; EPROTO: another protocol version
 *   or a message out of order; EBADMSG: not msgpack, or an unknown message;
 * - EINVAL: a span with malformed fields; EPERM: a span the client may not
 *   touch (another process's, another trace's parent);
 * - ENOSPC: over a fair share (connections or spans in flight); ENOBUFS: the
 *   sidecar's budget for unfinished frames is spent;
 * - ESRCH: the sidecar cannot see the client's process (another PID
 *   namespace); EINTERNAL: the sidecar's own failure.
 */
export type WireCode = 'EMSGSIZE' | 'EPROTO' | 'EBADMSG' | 'EINVAL' | 'EPERM' | 'ENOSPC' | 'ENOBUFS' | 'ESRCH' | 'EINTERNAL';

/** A frame or a message that breaks the protocol; the connection it came on is closed. */
export class ProtocolError extends AgentraceError {
  readonly code = 'AR_ERR_PROTOCOL';
  constructor(
    /** What the peer is told in the `error` frame. */
    readonly wireCode: WireCode,
    message: string,
  ) {
    super(message);
  }
}

// Plain msgpack maps (no msgpackr records), so any msgpack reader can follow.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

export function encodeFrame(msg: Message): Buffer {
  const body = packr.pack(msg);
  if (body.length + 1 > MAX_FRAME_BYTES) {
    throw new ProtocolError('EMSGSIZE', `frame of ${body.length + 1} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length + 1, 0);
  frame.writeUInt8(PROTOCOL_VERSION, 4);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

const KNOWN = new Set(['hello', 'start', 'end', 'welcome', 'error', 'policy', 'check-frames', 'frames']);

/**
 * Splits a byte stream into messages. Throws ProtocolError on a frame that is
 * too large, of another protocol version, not msgpack, or not a known message;
 * the caller then closes that connection.
 *
 * Linear in the bytes received: chunks of a frame that is not complete yet
 * are kept as they came and joined once, when the frame is, so a peer that
 * drips a large frame a byte at a time costs no more than its bytes.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being received (header included), once its header is in. */
  private need: number | undefined;
  /** Bytes copied while joining chunks (for tests: at most about what was received). */
  copied = 0;

  push(chunk: Buffer): Message[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Message[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.buffered < 4) break;
        const len = this.peekLength();
        if (len < 1 || len > MAX_FRAME_BYTES) {
          throw new ProtocolError('EMSGSIZE', `frame length ${len} is outside 1..${MAX_FRAME_BYTES}`);
        }
        this.need = 4 + len;
      }
      if (this.buffered < this.need) break;
      const frame = this.take(this.need);
      this.need = undefined;
      out.push(decodeBody(frame));
    }
    return out;
  }

  /** Bytes received that do not yet form a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  /** The u32 length prefix, which may straddle chunks. */
  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.alloc(4);
    let off = 0;
    for (const c of this.chunks) {
      off += c.copy(head, off, 0, Math.min(c.length, 4 - off));
      if (off === 4) break;
    }
    return head.readUInt32BE(0);
  }

  /** Removes the first n bytes, joined into one buffer (copied only if they span chunks). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.copied += n;
    return out;
  }
}

function decodeBody(frame: Buffer): Message {
  const version = frame.readUInt8(4);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError('EPROTO', `protocol version ${version} is not supported (this side speaks ${PROTOCOL_VERSION})`);
  }
  let msg: unknown;
  try {
    msg = packr.unpack(frame.subarray(HEADER_BYTES));
  } catch (err) {
    throw new ProtocolError('EBADMSG', `frame body is not msgpack: ${messageOf(err)}`);
  }
  if (typeof msg !== 'object' || msg === null || !KNOWN.has((msg as { t?: unknown }).t as string)) {
    throw new ProtocolError('EBADMSG', `unknown message ${JSON.stringify(msg)?.slice(0, 80)}`);
  }
  return msg as Message;
}
