// The Unix-socket server agents talk to. Each connection is identified by the
// kernel (SO_PEERCRED), never by what the client says; a malformed frame
// closes that connection and nothing else.
// msgpackr's node entry, for its side effect: the frames' decoder (the one
// @agentrace/protocol imports) then reads long strings natively.
import 'msgpackr';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { peerCredentials } from '@agentrace/bpf';
import { pinProcess, stillRunning, type ProcessIdentity } from './process-identity.js';
import { RateShare } from './rate-share.js';
import { Tally } from './tally.js';
import { ThreadIds } from './thread-ids.js';
import {
  encodeFrame,
  toolPatternsPath,
  FrameDecoder,
  ProtocolError,
  type CheckFramesMessage,
  type ClientMessage,
  type FramesAnswer,
  type HelloMessage,
  type SpanEndMessage,
  type SpanStartMessage,
  asError,
  messageOf,
  type WireCode,
} from '@agentrace/protocol';

export interface AgentConnection {
  /** Unique per connection for the life of the server: an agent has one per thread. */
  readonly id: number;
  /** The peer's pid as the kernel recorded it at connect time. */
  readonly pid: number;
  readonly uid: number;
  /** The peer process, pinned when it connected (pid and start time). */
  readonly process: ProcessIdentity;
  /** Whether the pinned process still runs (false once it exited, even if its pid was reused). */
  alive(): boolean;
  /** Its threads as it names them (in its PID namespace), in the sidecar's ids. */
  readonly threads: ThreadIds;
  /** Resource attributes from the agent's hello, with process.pid set by us. */
  resource: Attributes;
  /** Sends a refusal to the agent without closing the connection (a quota refusal once). */
  refuse(code: WireCode, message: string): void;
}

export interface ConnectionHandlers {
  /**
   * The peer said hello: track it. Returns once the kernel tracks the
   * process, with what the welcome says of the frame rung (to a client that
   * asked for it).
   */
  onHello(conn: AgentConnection, msg: HelloMessage): { frames?: FramesAnswer } | void;
  /** A thread asks whether the kernel reads its calls from its async context. */
  onCheckFrames(conn: AgentConnection, msg: CheckFramesMessage): FramesAnswer;
  onSpanStart(conn: AgentConnection, msg: SpanStartMessage): void;
  onSpanEnd(conn: AgentConnection, msg: SpanEndMessage): void;
  onClose(conn: AgentConnection): void;
  /** A connection was closed for a protocol error (logged by the caller). */
  onProtocolError(conn: AgentConnection | undefined, err: Error): void;
}

export interface SocketServerStats {
  connections: number;
  open: number;
  protocolErrors: number;
  /** Connections refused: over the total cap, or over their user's share. */
  refusedConnections: number;
  /** Connections refused: the peer's process is in no PID namespace the sidecar sees (SO_PEERCRED gives pid 0). */
  unseenPeers: number;
  /** Connections closed because a frame begun was not finished in time. */
  partialFrameTimeouts: number;
  /** Connections closed because partial frames over all connections passed the byte budget. */
  pendingBudgetClosed: number;
  /** Times a connection was not read for a while because its process, or its user, was over its frame rate. */
  throttledProcess: number;
  throttledUser: number;
}

/** What one socket server takes at most. */
export interface SocketLimits {
  /** Connections open at once, over all agents. */
  maxConnections: number;
  /** ... of one user (uid): an agent has one per thread. */
  maxConnectionsPerUser: number;
  /** A frame begun must be complete within this (agents write frames whole). */
  partialFrameMs: number;
  /** Bytes of unfinished frames held over all connections. */
  maxPendingBytes: number;
  /** Frames one process's connections are read at, per second at most (a second's burst). */
  framesPerSecondPerProcess: number;
  /** ... all of one user's. */
  framesPerSecondPerUser: number;
}

/** The stats of a server that served nobody (yet). */
export function emptySocketStats(): SocketServerStats {
  return {
    connections: 0,
    open: 0,
    protocolErrors: 0,
    refusedConnections: 0,
    unseenPeers: 0,
    partialFrameTimeouts: 0,
    pendingBudgetClosed: 0,
    throttledProcess: 0,
    throttledUser: 0,
  };
}

/** How long a refused client has to read why before its socket closes anyway, and how many may wait at once. */
const REFUSED_LINGER_MS = 1000;
const MAX_LINGERING = 64;

const UNSEEN_PEER =
  "connection refused: the agent's process is not in the sidecar's PID namespace or one below it, so the sidecar cannot see its syscalls; " +
  'run the sidecar in the pod with shareProcessNamespace: true, or as the node daemon with hostPID: true (deploy/)';

export const DEFAULT_SOCKET_LIMITS: SocketLimits = {
  maxConnections: 4096,
  maxConnectionsPerUser: 1024,
  partialFrameMs: 10_000,
  maxPendingBytes: 64 * 1024 * 1024,
  // A call is two frames: 10,000 calls a second from one process is far past
  // any real agent, and well within one sidecar core (the soak benchmark).
  framesPerSecondPerProcess: 20_000,
  framesPerSecondPerUser: 50_000,
};

export class SocketServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly stats_: SocketServerStats = emptySocketStats();
  private readonly processRate: RateShare;
  private readonly userRate: RateShare;
  private nextId = 1;
  /** Refused sockets waiting for their client to read why (closeRefused). */
  private lingering = 0;
  private readonly limits: SocketLimits;
  private readonly perUser = new Tally<number>();
  /** Connections with an unfinished frame: since when, and how many bytes. */
  private readonly partial = new Map<net.Socket, { since: number; bytes: number }>();
  private pendingBytes = 0;
  private readonly sweeper: NodeJS.Timeout;
  /** The policy's tool patterns, in its order: told at welcome, and again on a change. */
  private toolPatterns: string[] = [];
  /** Greeted clients that take `policy` frames, and how to reach them. */
  private readonly policyListeners = new Map<net.Socket, (frame: Buffer) => void>();

  private constructor(
    readonly socketPath: string,
    private readonly handlers: ConnectionHandlers,
    private readonly version: string,
    limits: Partial<SocketLimits>,
  ) {
    this.limits = { ...DEFAULT_SOCKET_LIMITS, ...limits };
    this.processRate = new RateShare(this.limits.framesPerSecondPerProcess);
    this.userRate = new RateShare(this.limits.framesPerSecondPerUser);
    this.server = net.createServer((socket) => this.accept(socket));
    this.sweeper = setInterval(() => this.closeStalled(), Math.max(50, Math.min(1000, this.limits.partialFrameMs / 4))).unref();
  }

  /** Listens on `socketPath`, replacing a stale socket file but never a live server. */
  static async listen(socketPath: string, handlers: ConnectionHandlers, version: string, limits: Partial<SocketLimits> = {}): Promise<SocketServer> {
    const s = new SocketServer(socketPath, handlers, version, limits);
    // a dead sidecar's patterns are not this one's
    fs.rmSync(toolPatternsPath(socketPath), { force: true });
    // Any local process may connect: what it may do is decided by its pid.
    try {
      await listenUnix(s.server, socketPath, 0o666, '--socket');
    } catch (err) {
      clearInterval(s.sweeper);
      throw err;
    }
    return s;
  }

  /**
   * The policy's tool patterns changed (a reload): every client that takes
   * `policy` frames is told at once, the others at their next connection.
   */
  setToolPatterns(tools: readonly string[]): void {
    this.toolPatterns = [...tools];
    const frame = encodeFrame({ t: 'policy', tools: this.toolPatterns });
    for (const send of this.policyListeners.values()) send(frame);
    // beside the socket too, for agents' calls before their welcome (written whole, then renamed)
    const file = toolPatternsPath(this.socketPath);
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(this.toolPatterns), { mode: 0o644 });
      fs.renameSync(`${file}.tmp`, file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(`cannot write ${file} (${e.code ?? e.message}): calls an agent makes before its welcome are keyed by their name, not their pattern`);
    }
  }

  /** A frame begun and not finished in time: the client is dripping, or stuck. */
  private closeStalled(now = Date.now()): void {
    this.processRate.sweep(now);
    this.userRate.sweep(now);
    for (const [socket, p] of this.partial) {
      if (now - p.since < this.limits.partialFrameMs) continue;
      this.stats_.partialFrameTimeouts++;
      this.forgetPartial(socket);
      socket.destroy();
    }
  }

  /** Tracks a connection's unfinished bytes; false when the budget over all connections is spent. */
  private notePartial(socket: net.Socket, bytes: number): boolean {
    const p = this.partial.get(socket);
    this.pendingBytes += bytes - (p?.bytes ?? 0);
    if (bytes === 0) this.partial.delete(socket);
    else if (p) p.bytes = bytes;
    else this.partial.set(socket, { since: Date.now(), bytes });
    return this.pendingBytes <= this.limits.maxPendingBytes;
  }

  private forgetPartial(socket: net.Socket): void {
    this.notePartial(socket, 0);
  }

  /**
   * Fair share of the sidecar's time: a process (all its connections), or
   * a user, over its frame rate is not read until the rate allows what it
   * already sent. Nothing is lost here; the client's SDK sheds, and says so.
   */
  private throttle(socket: net.Socket, c: AgentConnection, frames: number): void {
    const byProcess = this.processRate.take(`${c.pid}`, frames);
    const byUser = this.userRate.take(`${c.uid}`, frames);
    const wait = Math.max(byProcess, byUser);
    if (wait === 0) return;
    if (byUser > byProcess) this.stats_.throttledUser++;
    else this.stats_.throttledProcess++;
    socket.pause();
    setTimeout(() => {
      if (!socket.destroyed) socket.resume();
    }, wait).unref();
  }

  stats(): SocketServerStats {
    return { ...this.stats_, open: this.sockets.size };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    fs.rmSync(this.socketPath, { force: true });
    fs.rmSync(toolPatternsPath(this.socketPath), { force: true });
  }

  /**
   * A refused client has the reason in its queue. Closed at once, with its
   * hello unread, the kernel would fail its next write (EPIPE) and it might
   * never read why: so what it sends is read and dropped, and the socket
   * closes when it does, or after REFUSED_LINGER_MS. A few at a time: past
   * that, refusals close at once.
   */
  private closeRefused(socket: net.Socket): void {
    this.sockets.delete(socket);
    if (this.lingering >= MAX_LINGERING) {
      socket.destroy();
      return;
    }
    this.lingering++;
    const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
    socket.once('close', () => {
      this.lingering--;
      clearTimeout(timer);
    });
    socket.on('error', () => socket.destroy());
    socket.resume();
    socket.end();
  }

  private accept(socket: net.Socket): void {
    this.stats_.connections++;
    this.sockets.add(socket);
    let conn: AgentConnection | undefined;
    const send = replies(socket);
    const told = new Set<string>();
    try {
      const cred = peerCredentials(socket);
      const pinned = pinProcess(cred.pid);
      let running = pinned.startTime !== undefined;
      conn = {
        id: this.nextId++,
        pid: cred.pid,
        uid: cred.uid,
        process: pinned,
        alive: () => (running &&= stillRunning(pinned)),
        threads: new ThreadIds(cred.pid),
        resource: {},
        // A client over its share is told once, not once per refused span
        // (a flood would otherwise be answered with a flood).
        refuse: (code, message) => {
          if (code === 'ENOSPC') {
            if (told.has(code)) return;
            told.add(code);
          }
          send(encodeFrame({ t: 'error', code, message }));
        },
      };
    } catch (err) {
      this.handlers.onProtocolError(undefined, asError(err));
      socket.destroy();
      this.sockets.delete(socket);
      return;
    }
    const c = conn;
    if (c.pid === 0) {
      // Its syscalls are invisible too: the kernel names it in no namespace
      // of ours. Serving it would export calls with nothing under them.
      this.stats_.unseenPeers++;
      const message = UNSEEN_PEER;
      this.handlers.onProtocolError(undefined, new ProtocolError('ESRCH', message));
      send(encodeFrame({ t: 'error', code: 'ESRCH', message }));
      this.closeRefused(socket);
      return;
    }
    // Fair share of connections: the total, and each user's.
    const mine = this.perUser.get(c.uid);
    if (this.sockets.size > this.limits.maxConnections || mine >= this.limits.maxConnectionsPerUser) {
      this.stats_.refusedConnections++;
      const which = mine >= this.limits.maxConnectionsPerUser ? `uid ${c.uid} has ${mine} connections, its share` : `${this.sockets.size - 1} connections are open`;
      send(encodeFrame({ t: 'error', code: 'ENOSPC', message: `connection refused: ${which}` }));
      this.closeRefused(socket);
      return;
    }
    this.perUser.add(c.uid, 1);
    const decoder = new FrameDecoder();
    let greeted = false;
    let failed = false;
    socket.on('data', (chunk: Buffer) => {
      if (failed) return;
      let messages: ClientMessage[];
      try {
        messages = decoder.push(chunk) as ClientMessage[];
        if (!this.notePartial(socket, decoder.pending)) {
          this.stats_.pendingBudgetClosed++;
          throw new ProtocolError('ENOBUFS', `unfinished frames of all clients exceed ${this.limits.maxPendingBytes} bytes`);
        }
        if (messages.length > 0) this.throttle(socket, c, messages.length);
        for (const msg of messages) {
          if (msg.t === 'hello') {
            greeted = true;
            c.threads.namespaceOf(Number.isInteger(msg.pid) ? msg.pid : undefined);
            const frames = this.handlers.onHello(c, msg)?.frames;
            send(encodeFrame({ t: 'welcome', pid: c.pid, sidecar: this.version, ...(this.toolPatterns.length ? { tools: this.toolPatterns } : {}), ...(frames ? { frames } : {}) }));
            if (msg.policy === true) this.policyListeners.set(socket, send);
          } else if (!greeted) {
            throw new ProtocolError('EPROTO', `"${msg.t}" before "hello"`);
          } else if (msg.t === 'start') {
            this.handlers.onSpanStart(c, msg);
          } else if (msg.t === 'end') {
            this.handlers.onSpanEnd(c, msg);
          } else if (msg.t === 'check-frames') {
            if (!Number.isInteger(msg.tid) || msg.tid <= 0) throw new ProtocolError('EINVAL', `check-frames: tid must be a positive integer, not ${String(msg.tid)}`);
            send(encodeFrame({ t: 'frames', ...this.handlers.onCheckFrames(c, msg) }));
          } else {
            throw new ProtocolError('EPROTO', `a client may not send "${(msg as { t: string }).t}"`);
          }
        }
      } catch (err) {
        failed = true;
        this.stats_.protocolErrors++;
        this.handlers.onProtocolError(c, asError(err));
        const code: WireCode = err instanceof ProtocolError ? err.wireCode : 'EINTERNAL';
        send(encodeFrame({ t: 'error', code, message: messageOf(err) }));
        socket.destroy();
      }
    });
    // Only reads go through the stream: an error is a read error, nothing more will come.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.policyListeners.delete(socket);
      this.forgetPartial(socket);
      this.perUser.add(c.uid, -1);
      this.handlers.onClose(c);
    });
  }
}

/**
 * The sidecar's replies (welcome, refusals) to one client. Everything a
 * client wrote must be read, even after it exited; but a Node socket that
 * fails a write (the client is gone: EPIPE) is destroyed, or stops reading,
 * with the client's last frames still unread. So replies bypass the stream:
 * one non-blocking write(2) each on the socket's descriptor, best effort (a
 * client that is gone or reads nothing loses only replies), and the stream
 * only ever reads.
 */
function replies(socket: net.Socket): (frame: Buffer) => void {
  let open = true;
  return (frame) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (!open || socket.destroyed || typeof fd !== 'number' || fd < 0) return;
    try {
      // A part of a frame would leave the client's stream misaligned: no more replies after one.
      if (fs.writeSync(fd, frame) < frame.length) open = false;
    } catch (err) {
      // EAGAIN: a client that reads nothing gets no more replies either.
      if ((err as NodeJS.ErrnoException).code !== 'EINTR') open = false;
    }
  };
}

/** Removes a socket file nobody listens on; refuses to steal a live one (`flag` names the option to pick another). */
export async function removeStaleSocket(socketPath: string, flag = '--socket'): Promise<void> {
  if (!fs.existsSync(socketPath)) return;
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    throw new Error(`another sidecar is already listening on ${socketPath}; stop it or pick another ${flag}`);
  }
  fs.rmSync(socketPath, { force: true });
}

/**
 * Listens on the Unix socket `socketPath` (its directory created, a stale
 * socket file replaced, never a live server), then sets its mode.
 */
export async function listenUnix(server: net.Server, socketPath: string, mode: number, flag: string): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  await removeStaleSocket(socketPath, flag);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socketPath, mode);
}
