// The Unix-socket server agents talk to. Each connection is identified by the
// kernel (SO_PEERCRED), never by what the client says; a malformed frame
// closes that connection and nothing else.
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { peerCredentials } from '@agentrace/bpf';
import { pinProcess, stillRunning, type ProcessIdentity } from './process-identity.js';
import {
  encodeFrame,
  FrameDecoder,
  ProtocolError,
  type ClientMessage,
  type HelloMessage,
  type SpanEndMessage,
  type SpanStartMessage,
} from '@agentrace/sdk/protocol';

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
  /** Resource attributes from the agent's hello, with process.pid set by us. */
  resource: Attributes;
  /** Sends a refusal to the agent without closing the connection (once per code). */
  refuse(code: string, message: string): void;
}

export interface ConnectionHandlers {
  /** The peer said hello: track it. Returns once the kernel tracks the process. */
  onHello(conn: AgentConnection, msg: HelloMessage): void;
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
}

export class SocketServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly stats_: SocketServerStats = { connections: 0, open: 0, protocolErrors: 0 };
  private nextId = 1;

  private constructor(
    readonly socketPath: string,
    private readonly handlers: ConnectionHandlers,
    private readonly version: string,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on `socketPath`, replacing a stale socket file but never a live server. */
  static async listen(socketPath: string, handlers: ConnectionHandlers, version: string): Promise<SocketServer> {
    const s = new SocketServer(socketPath, handlers, version);
    // Any local process may connect: what it may do is decided by its pid.
    await listenUnix(s.server, socketPath, 0o666, '--socket');
    return s;
  }

  stats(): SocketServerStats {
    return { ...this.stats_, open: this.sockets.size };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    fs.rmSync(this.socketPath, { force: true });
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
        resource: {},
        // Told once per reason: a client refused a thousand times gets one frame, not a thousand.
        refuse: (code, message) => {
          if (told.has(code)) return;
          told.add(code);
          send(encodeFrame({ t: 'error', code, message }));
        },
      };
    } catch (err) {
      this.handlers.onProtocolError(undefined, err as Error);
      socket.destroy();
      this.sockets.delete(socket);
      return;
    }
    const c = conn;
    const decoder = new FrameDecoder();
    let greeted = false;
    let failed = false;
    socket.on('data', (chunk: Buffer) => {
      if (failed) return;
      let messages: ClientMessage[];
      try {
        messages = decoder.push(chunk) as ClientMessage[];
        for (const msg of messages) {
          if (msg.t === 'hello') {
            greeted = true;
            this.handlers.onHello(c, msg);
            send(encodeFrame({ t: 'welcome', pid: c.pid, sidecar: this.version }));
          } else if (!greeted) {
            throw new ProtocolError('EPROTO', `"${msg.t}" before "hello"`);
          } else if (msg.t === 'start') {
            this.handlers.onSpanStart(c, msg);
          } else if (msg.t === 'end') {
            this.handlers.onSpanEnd(c, msg);
          } else {
            throw new ProtocolError('EPROTO', `a client may not send "${(msg as { t: string }).t}"`);
          }
        }
      } catch (err) {
        failed = true;
        this.stats_.protocolErrors++;
        this.handlers.onProtocolError(c, err as Error);
        const code = err instanceof ProtocolError ? err.code : 'EINTERNAL';
        send(encodeFrame({ t: 'error', code, message: (err as Error).message }));
        socket.destroy();
      }
    });
    // Only reads go through the stream: an error is a read error, nothing more will come.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
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
      fs.writeSync(fd, frame);
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
