// One thread's connection to the sidecar: connect, hello, wait for welcome,
// send span frames, reconnect in the background. Never throws into the
// agent, never waits synchronously, never keeps the process alive (the
// socket and timers are unref'd), and never holds more than
// QUEUE_CAPACITY frames while disconnected.
//
// Queue policy. While no connection is up (connecting, or backing off
// between attempts), frames wait in a queue of at most QUEUE_CAPACITY frames
// that is sent after `hello` on the next connection. A `start` is admitted
// only while there is room for it and for the `end` of every queued start,
// so a queued start always gets its end; starts beyond that are dropped and
// counted (framesDropped), and so are their ends. While connected, a start is
// dropped (and counted) when more than MAX_BUFFERED_BYTES already wait in
// the socket (a stuck sidecar), so memory stays bounded there too.
//
// Orphan ends. Every accepted start is tagged with the connection
// generation it went to; the generation changes when a connection that was
// up closes. An `end` is sent only on the generation its start went to, so
// the sidecar never gets an `end` without its `start` (it forgets a
// connection's open spans when the connection closes).
import net from 'node:net';
import {
  encodeFrame,
  FrameDecoder,
  ProtocolError,
  type ClientMessage,
  type FramesAnswer,
  type HelloMessage,
  type SidecarMessage,
  type SpanEndMessage,
  type SpanStartMessage,
  type WelcomeMessage,
} from '@agentrace/protocol';
import { warn } from './warn.js';

export const QUEUE_CAPACITY = 1000;
export const MAX_BUFFERED_BYTES = 1024 * 1024;
export const MIN_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5000;
export const DEFAULT_FLUSH_MS = 1000;
/**
 * A connection whose written bytes have not moved for this long, with
 * frames waiting, is a stalled sidecar: it is dropped (and retried later).
 * Pending writes keep a Node process alive whatever the socket's ref, so
 * without this a stalled sidecar would keep the agent from exiting.
 */
export const STALL_MS = 5000;

/** A start that was not accepted: its end is not sent either. */
export const NOT_SENT = -1;

type State = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface SidecarClientOptions {
  socketPath: string;
  /** Builds the hello frame of each connection. */
  hello: () => HelloMessage;
  /** Runs on every `welcome`, before whenWelcomed() waiters resolve. */
  onWelcome: (msg: WelcomeMessage) => void;
  /** Runs on a `policy` frame: the sidecar's policy patterns changed. */
  onPolicy?: (tools: string[]) => void;
  /** Runs on a `frames` frame: the answer to checkFrames(). */
  onFrames?: (answer: FramesAnswer) => void;
  /**
   * Runs `fn` (a connect or a write to the sidecar) as no tool call's: the
   * agent's own connection to the sidecar is nobody's I/O, whichever call's
   * callback it happens in. Default: runs it as it is.
   */
  outsideCalls?: <T>(fn: () => T) => T;
}

export interface SidecarClientStats {
  socketPath: string;
  connected: boolean;
  welcomed: boolean;
  /** close() was called: nothing is sent any more. */
  closed: boolean;
  /** Id of the current connection generation (unique in this thread; changes when a connection that was up closes). */
  generation: number;
  /** Connections that got `welcome`. */
  welcomes: number;
  framesSent: number;
  framesDropped: number;
  /** Ends not sent because their start went to a connection that has closed. */
  endsSuppressed: number;
  queueLength: number;
  queueCapacity: number;
}

// Unique across clients of this thread, so an end never matches a start sent by another client.
let generations = 0;
// Per thread, not per client (configure() makes a new client): one warning
// per outage, and one per sidecar error code.
let warnedThisOutage = false;
/** Frames this thread dropped although a sidecar had answered (it could not keep up). */
let droppedWhileServed = 0;
/** Connections given up, with what they still held, because the sidecar stopped reading. */
let stalledConnections = 0;
const warnedCodes = new Set<string>();

export class SidecarClient {
  private state: State = 'idle';
  private socket: net.Socket | undefined;
  private decoder = new FrameDecoder();
  private generation = ++generations;
  private welcomed = false;
  private welcomes = 0;
  private queue: Buffer[] = [];
  private queuedOpenStarts = 0;
  private corked = false;
  private timer: NodeJS.Timeout | undefined;
  private backoff = MIN_BACKOFF_MS;
  private everConnected = false;
  private lastError: string | undefined;
  private welcomeWaiters: Array<(ok: boolean) => void> = [];
  private stateWaiters: Array<() => void> = [];
  private framesSent = 0;
  private framesDropped = 0;
  /** Dropped before any connection came up: unknown then whether a sidecar runs at all. */
  private droppedUnserved = 0;
  private endsSuppressed = 0;

  constructor(private readonly opts: SidecarClientOptions) {}

  get socketPath(): string {
    return this.opts.socketPath;
  }

  /** Whether the current connection got `welcome` (cheap; for the per-call path). */
  get isWelcomed(): boolean {
    return this.welcomed;
  }

  /** The current connection generation (cheap; for the per-call path). */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Whether a sidecar answered or is being connected to (false: known to be absent now, or closed). */
  get mayBeServed(): boolean {
    return this.state === 'connecting' || this.state === 'connected';
  }

  /** Starts connecting (once); later calls do nothing. */
  start(): void {
    if (this.state !== 'idle') return;
    watchExit(this);
    this.connect();
  }

  /** Frames written or queued that have not reached the kernel yet. */
  get unsent(): boolean {
    if (this.state === 'connected') return this.corked || this.socket!.writableLength > 0;
    return this.state === 'connecting' && this.queue.length > 0;
  }

  /**
   * The process is exiting (synchronously: no more turns of the loop):
   * corked frames go to the kernel now. A connected socket's write is
   * attempted at once, so they are in the sidecar's socket buffer before
   * the process is gone.
   */
  exiting(): void {
    this.uncork();
  }

  stats(): SidecarClientStats {
    return {
      socketPath: this.opts.socketPath,
      connected: this.state === 'connected',
      welcomed: this.welcomed,
      closed: this.state === 'closed',
      generation: this.generation,
      welcomes: this.welcomes,
      framesSent: this.framesSent,
      framesDropped: this.framesDropped,
      endsSuppressed: this.endsSuppressed,
      queueLength: this.queue.length,
      queueCapacity: QUEUE_CAPACITY,
    };
  }

  /** False when a start would be dropped now (so the caller need not build it). */
  acceptsStart(): boolean {
    if (this.state === 'connected') return this.socket!.writableLength <= MAX_BUFFERED_BYTES;
    return this.state !== 'closed' && this.queue.length + this.queuedOpenStarts + 2 <= QUEUE_CAPACITY;
  }

  /** Counts a start the caller dropped because acceptsStart() said no. */
  countDropped(): void {
    this.drop();
  }

  /** Sends (or queues) a start. Returns its generation, or NOT_SENT. */
  sendStart(msg: SpanStartMessage): number {
    if (this.state === 'closed') return this.drop();
    if (this.state === 'connected') {
      const socket = this.socket!;
      if (socket.writableLength > MAX_BUFFERED_BYTES) return this.drop();
      const frame = encode(msg);
      if (!frame) return this.drop();
      this.write(socket, frame);
      return this.generation;
    }
    if (this.queue.length + this.queuedOpenStarts + 2 > QUEUE_CAPACITY) return this.drop();
    const frame = encode(msg);
    if (!frame) return this.drop();
    this.queue.push(frame);
    this.queuedOpenStarts++;
    return this.generation;
  }

  /**
   * Asks whether the kernel reads thread `tid`'s calls from its async
   * context (answered through onFrames). On the current connection only:
   * false when there is none (the next welcome asks again).
   */
  checkFrames(tid: number): boolean {
    if (this.state !== 'connected' || !this.welcomed) return false;
    const frame = encode({ t: 'check-frames', tid });
    if (!frame) return false;
    this.write(this.socket!, frame);
    return true;
  }

  /** Sends (or queues) the end of a span whose start got generation `gen`. */
  sendEnd(msg: SpanEndMessage, gen: number): void {
    if (gen === NOT_SENT) {
      this.drop();
      return;
    }
    if (gen !== this.generation || this.state === 'closed') {
      this.endsSuppressed++;
      return;
    }
    // An end must not get lost once its start went out: if it cannot be
    // encoded with its attributes, send it without them.
    const frame = encode(msg) ?? encode({ ...msg, attrs: {} });
    if (!frame) {
      this.drop();
      return;
    }
    if (this.state === 'connected') {
      this.write(this.socket!, frame);
    } else {
      // Same generation and not connected: the start is still in the queue,
      // and its end had room reserved.
      this.queue.push(frame);
      this.queuedOpenStarts--;
    }
  }

  /**
   * Resolves true once a connection got `welcome` (and onWelcome ran);
   * false when the attempt fails (no sidecar listens there) or after timeoutMs.
   */
  whenWelcomed(timeoutMs: number): Promise<boolean> {
    if (this.welcomed) return Promise.resolve(true);
    if (this.state === 'closed') return Promise.resolve(false);
    this.start();
    // Backing off after a failed attempt: whoever asks wants the answer
    // now, not after the back-off.
    if (this.state === 'waiting') {
      clearTimeout(this.timer);
      this.connect();
    }
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(t);
        this.welcomeWaiters = this.welcomeWaiters.filter((w) => w !== done);
        resolve(ok);
      };
      // Referenced on purpose: whoever awaits this wants the answer.
      const t = setTimeout(() => done(false), Math.max(0, timeoutMs));
      this.welcomeWaiters.push(done);
    });
  }

  /**
   * Waits (at most timeoutMs) until queued and buffered frames reached the
   * kernel's socket buffer. Returns at once when no connection is up or
   * being made.
   */
  async flush(timeoutMs: number = DEFAULT_FLUSH_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.uncork();
    // Keep the process alive while we wait; put it back afterwards.
    this.socket?.ref();
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        if (this.state === 'connected') {
          if (this.socket!.writableLength === 0) return;
        } else if (this.state !== 'connecting' || this.queue.length === 0) {
          return;
        }
        await this.nextStateChange(Math.min(left, 10));
      }
    } finally {
      this.socket?.unref();
    }
  }

  /** Flushes, closes the connection and stops reconnecting. Frames after this are dropped. */
  async close(timeoutMs: number = DEFAULT_FLUSH_MS): Promise<void> {
    if (this.state === 'closed') return;
    await this.flush(timeoutMs);
    this.state = 'closed';
    unwatchExit(this);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.framesDropped += this.queue.length;
    this.queue = [];
    this.queuedOpenStarts = 0;
    const socket = this.socket;
    this.socket = undefined;
    this.welcomed = false;
    socket?.destroySoon();
    this.resolveWelcome(false);
  }

  private drop(): number {
    this.framesDropped++;
    // With no sidecar at all, the "cannot connect" warning said it. With one
    // that does not keep up, each lost frame is a span without attribution:
    // said once now, counted at exit. Frames lost before the first connection
    // (an agent that calls tools without ever yielding to the event loop
    // fills the queue before its socket connects) count once it connects.
    if (this.everConnected) this.servedDrops(1);
    else this.droppedUnserved++;
    return NOT_SENT;
  }

  private servedDrops(n: number): void {
    const first = droppedWhileServed === 0;
    droppedWhileServed += n;
    if (first) {
      warn(
        'AGENTRACE_FRAMES_DROPPED',
        `agentrace: the sidecar at ${this.opts.socketPath} does not keep up (more than ${MAX_BUFFERED_BYTES} bytes wait, or ${QUEUE_CAPACITY} frames queued): ` +
          'frames are dropped, and their calls lose their kernel attribution; the count is printed at exit',
      );
    }
  }

  private write(socket: net.Socket, frame: Buffer): void {
    if (!this.corked) {
      // Everything sent in this tick goes out in one writev.
      this.corked = true;
      socket.cork();
      process.nextTick(() => this.uncork());
    }
    socket.write(frame);
    this.framesSent++;
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    const socket = this.socket;
    if (socket) this.outsideCalls(() => socket.uncork());
  }

  private outsideCalls<T>(fn: () => T): T {
    return this.opts.outsideCalls ? this.opts.outsideCalls(fn) : fn();
  }

  private connect(): void {
    this.timer = undefined;
    this.state = 'connecting';
    this.decoder = new FrameDecoder();
    let socket: net.Socket;
    try {
      socket = this.outsideCalls(() => net.createConnection({ path: this.opts.socketPath }));
    } catch (err) {
      this.lastError = errorCode(err);
      this.onClosed(false);
      return;
    }
    this.socket = socket;
    socket.unref();
    socket.on('connect', () => this.onConnect(socket));
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err: Error) => {
      this.lastError = errorCode(err);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.corked = false;
      this.onClosed(this.state === 'connected');
    });
  }

  private onConnect(socket: net.Socket): void {
    if (this.socket !== socket || this.state !== 'connecting') return;
    this.state = 'connected';
    this.everConnected = true;
    this.lastError = undefined;
    if (this.droppedUnserved > 0) {
      this.servedDrops(this.droppedUnserved);
      this.droppedUnserved = 0;
    }
    const hello = encode(this.opts.hello());
    if (hello) this.write(socket, hello);
    const queued = this.queue;
    this.queue = [];
    this.queuedOpenStarts = 0;
    for (const frame of queued) this.write(socket, frame);
    this.watchStall(socket);
    this.notifyState();
  }

  private watchStall(socket: net.Socket): void {
    let written = socket.bytesWritten;
    let since = Date.now();
    const timer = setInterval(() => {
      if (this.socket !== socket) return clearInterval(timer);
      if (socket.writableLength === 0 || socket.bytesWritten !== written) {
        written = socket.bytesWritten;
        since = Date.now();
        return;
      }
      if (Date.now() - since < STALL_MS) return;
      clearInterval(timer);
      this.lastError = 'ESTALLED';
      // What still waits is lost: a sidecar that reads nothing would not get it anyway.
      stalledConnections++;
      socket.destroy();
    }, Math.min(1000, STALL_MS / 2));
    timer.unref();
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    let messages;
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      // A sidecar that speaks garbage is treated as gone: drop the
      // connection and try a fresh one later.
      this.lastError = errorCode(err);
      socket.destroy();
      return;
    }
    for (const msg of messages as SidecarMessage[]) {
      if (msg.t === 'welcome') this.onWelcome(msg);
      else if (msg.t === 'error') this.onSidecarError(msg.code, msg.message);
      else if (msg.t === 'policy' && Array.isArray(msg.tools)) this.opts.onPolicy?.(msg.tools.filter((t): t is string => typeof t === 'string'));
      else if (msg.t === 'frames') this.opts.onFrames?.({ ok: msg.ok === true, warn: msg.warn === true, ...(typeof msg.reason === 'string' ? { reason: msg.reason } : {}) });
    }
  }

  private onWelcome(msg: WelcomeMessage): void {
    if (this.welcomed) return;
    this.welcomed = true;
    this.welcomes++;
    this.backoff = MIN_BACKOFF_MS;
    warnedThisOutage = false;
    try {
      this.opts.onWelcome(msg);
    } catch {
      // the callback reports its own failures
    }
    this.resolveWelcome(true);
  }

  private onSidecarError(code: unknown, message: unknown): void {
    const c = String(code);
    if (warnedCodes.has(c)) return;
    warnedCodes.add(c);
    warn(
      'AGENTRACE_SIDECAR_ERROR',
      `agentrace: the sidecar at ${this.opts.socketPath} refused a request (${c}): ${String(message)}`,
    );
  }

  private onClosed(wasConnected: boolean): void {
    if (wasConnected) this.generation = ++generations;
    this.welcomed = false;
    // Whoever waits for a welcome wants to know now, not at its timeout.
    this.resolveWelcome(false);
    if (this.state === 'closed') return;
    this.state = 'waiting';
    if (!warnedThisOutage) {
      warnedThisOutage = true;
      const code = this.lastError ?? 'ECONNRESET';
      const what = wasConnected || this.everConnected ? 'lost the connection to' : 'cannot connect to';
      warn(
        'AGENTRACE_SIDECAR_UNAVAILABLE',
        `agentrace: ${what} the sidecar at ${this.opts.socketPath} (${code}); ` +
          'tracing continues without kernel attribution, reconnecting in the background',
      );
    }
    const delay = this.backoff * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
    this.notifyState();
  }

  private resolveWelcome(ok: boolean): void {
    const waiters = this.welcomeWaiters;
    this.welcomeWaiters = [];
    for (const w of waiters) w(ok);
  }

  private notifyState(): void {
    const waiters = this.stateWaiters;
    this.stateWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves on the next connect/close, on 'drain', or after ms. */
  private nextStateChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = this.socket;
      const done = (): void => {
        clearTimeout(t);
        socket?.off('drain', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      socket?.once('drain', done);
      this.stateWaiters.push(done);
    });
  }
}

function encode(msg: ClientMessage): Buffer | undefined {
  try {
    return encodeFrame(msg);
  } catch {
    return undefined;
  }
}

/** What went wrong, as the warning names it: the errno name (of the system, or of the protocol break). */
function errorCode(err: unknown): string {
  if (err instanceof ProtocolError) return err.wireCode;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'EUNKNOWN';
}

/**
 * Frames must not be lost because the agent exited: when the loop runs dry
 * (beforeExit) with frames still unsent, they are flushed once more (the
 * socket keeps the process alive meanwhile, at most DEFAULT_FLUSH_MS); on
 * exit, what is corked goes to the kernel synchronously. One pair of
 * listeners per thread, whatever the number of clients.
 */
const liveClients = new Set<SidecarClient>();
let exitWatched = false;
let flushedBeforeExit = false;

function watchExit(client: SidecarClient): void {
  liveClients.add(client);
  if (exitWatched) return;
  exitWatched = true;
  process.on('beforeExit', () => {
    if (flushedBeforeExit) return;
    const unsent = [...liveClients].filter((c) => c.unsent);
    if (unsent.length === 0) return;
    flushedBeforeExit = true;
    for (const c of unsent) void c.flush().catch(() => {});
  });
  process.on('exit', () => {
    for (const c of liveClients) c.exiting();
    // A warning at exit would never print (it is emitted on the next tick).
    if (droppedWhileServed > 0 || stalledConnections > 0) {
      const stalled = stalledConnections ? `, and ${stalledConnections} stalled connection(s) were given up with the frames they held` : '';
      process.stderr.write(`agentrace: ${droppedWhileServed} frames for the sidecar were dropped (it did not keep up)${stalled}; their calls have no kernel attribution\n`);
    }
  });
}

function unwatchExit(client: SidecarClient): void {
  liveClients.delete(client);
}
