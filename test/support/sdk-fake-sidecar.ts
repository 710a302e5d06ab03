// A fake agentrace sidecar for the SDK's tests and benchmark: a real Unix
// socket server in a temp dir speaking the protocol of
// @agentrace/protocol. It records every message with the connection it
// came on, answers hello with welcome (now, later, or never), and can send
// raw bytes, drop its connections, stop and listen again.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameDecoder, type ClientMessage, type FramesAnswer, type SidecarMessage } from '@agentrace/protocol';

export type WelcomePolicy = 'auto' | 'manual' | 'never';

export interface Received {
  /** Index of the connection (in accept order, from 0). */
  conn: number;
  msg: ClientMessage;
}

export interface FakeSidecarOptions {
  /** Socket path; default: sidecar.sock in a fresh temp dir (removed by close()). */
  path?: string;
  welcome?: WelcomePolicy;
  /** Stop reading a connection once it is welcomed: a sidecar that does not keep up. */
  stallAfterWelcome?: boolean;
  /** Record messages (default true; the benchmark turns it off). */
  record?: boolean;
  /** What the welcome says of the frame rung (absent: nothing, as an older sidecar). */
  frames?: FramesAnswer;
  /** The answer to every check-frames (none: not answered). */
  framesAnswer?: FramesAnswer;
}

export class FakeSidecar {
  readonly path: string;
  readonly received: Received[] = [];
  /** Every connection accepted, in order; closed ones stay in the list. */
  readonly connections: net.Socket[] = [];
  /** Errors the server's decoder raised (a client sent a bad frame). */
  readonly decodeErrors: Error[] = [];
  welcome: WelcomePolicy;
  private server: net.Server | undefined;
  private readonly ownDir: string | undefined;
  private readonly record: boolean;
  private readonly stall: boolean;
  private waiters: Array<() => void> = [];
  messagesSeen = 0;
  private readonly frames: FramesAnswer | undefined;
  private readonly framesAnswer: FramesAnswer | undefined;

  private constructor(opts: FakeSidecarOptions) {
    if (opts.path) {
      this.path = opts.path;
    } else {
      this.ownDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-sdk-'));
      this.path = path.join(this.ownDir, 'sidecar.sock');
    }
    this.welcome = opts.welcome ?? 'auto';
    this.record = opts.record ?? true;
    this.stall = opts.stallAfterWelcome ?? false;
    this.frames = opts.frames;
    this.framesAnswer = opts.framesAnswer;
  }

  static async start(opts: FakeSidecarOptions = {}): Promise<FakeSidecar> {
    const s = new FakeSidecar(opts);
    await s.listen();
    return s;
  }

  /** Starts listening (again) on the same path. */
  async listen(): Promise<void> {
    fs.rmSync(this.path, { force: true });
    const server = net.createServer((sock) => this.accept(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
  }

  private accept(sock: net.Socket): void {
    const conn = this.connections.length;
    this.connections.push(sock);
    const decoder = new FrameDecoder();
    sock.on('error', () => {});
    sock.on('data', (chunk: Buffer) => {
      let msgs;
      try {
        msgs = decoder.push(chunk);
      } catch (err) {
        this.decodeErrors.push(err as Error);
        sock.destroy();
        return;
      }
      for (const m of msgs) {
        const msg = m as ClientMessage;
        this.messagesSeen++;
        if (this.record) this.received.push({ conn, msg });
        if (msg.t === 'hello' && this.welcome === 'auto') {
          this.sendWelcome(conn);
          if (this.stall) sock.pause();
        } else if (msg.t === 'check-frames' && this.framesAnswer) {
          this.send(conn, { t: 'frames', ...this.framesAnswer });
        }
      }
      if (this.waiters.length) {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    });
  }

  send(conn: number, msg: SidecarMessage): void {
    this.connections[conn]?.write(encodeFrame(msg));
  }

  sendWelcome(conn: number = this.connections.length - 1): void {
    this.send(conn, { t: 'welcome', pid: process.pid, sidecar: 'fake-sidecar 0', ...(this.frames ? { frames: this.frames } : {}) });
  }

  sendRaw(conn: number, bytes: Buffer): void {
    this.connections[conn]?.write(bytes);
  }

  /** Messages of one type, optionally of one connection. */
  of<T extends ClientMessage['t']>(t: T, conn?: number): Array<Extract<ClientMessage, { t: T }>> {
    return this.received
      .filter((r) => r.msg.t === t && (conn === undefined || r.conn === conn))
      .map((r) => r.msg as Extract<ClientMessage, { t: T }>);
  }

  /** Waits until pred() holds (checked after every received batch); rejects after timeoutMs. */
  async waitFor(pred: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake sidecar: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Closes every open connection (the server keeps listening). */
  dropConnections(): void {
    for (const c of this.connections) c.destroy();
  }

  /** Stops listening and drops all connections; listen() starts again. */
  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }

  /** stop(), and removes the temp dir it made. */
  async close(): Promise<void> {
    await this.stop();
    if (this.ownDir) fs.rmSync(this.ownDir, { recursive: true, force: true });
  }
}

/** The OS thread id of the calling JS thread. */
export function osThreadId(): number {
  const link = fs.readlinkSync('/proc/thread-self');
  return Number(link.slice(link.lastIndexOf('/') + 1));
}

export function hex(b: Uint8Array | undefined): string | undefined {
  return b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
