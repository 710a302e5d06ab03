// The sidecar's control socket: `agentrace probes` attaches and detaches
// probe groups here while agents keep running. Changing what the kernel
// traces is for root only: the socket is mode 0600 and each peer's uid is
// checked again through SO_PEERCRED. A malformed line closes that
// connection; nothing a client sends stops the sidecar.
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { peerCredentials, type ProbeGroup } from '@agentrace/bpf';
import { listenUnix } from './socket-server.js';
import {
  controlOps,
  GroupError,
  MalformedRequest,
  MAX_REQUEST_BYTES,
  parseGroups,
  parseRequest,
  toJson,
  type ControlOp,
  type ControlResponse,
  type ParsedRequest,
  type SwitchableGroup,
} from './control-protocol.js';
import { messageOf } from '@agentrace/protocol';

export interface ControlHandler {
  /** Every probe group and whether it is attached now. */
  probeStatus(): Record<ProbeGroup, boolean>;
  /** Attaches or detaches whole groups; throws when the kernel refuses. */
  setProbes(op: 'attach' | 'detach', groups: readonly SwitchableGroup[]): void;
  /** Counters for `status` (bigints allowed). */
  stats(): object;
  /** Reads the policy file again and puts it in force; throws (keeping the running one) when it cannot be used. */
  reloadPolicy(): { file: string; rules: number };
  /** Diagnostics, one line each. */
  log(line: string): void;
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly socketPath: string,
    private readonly handler: ControlHandler,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on `socketPath` (mode 0600), replacing a stale socket file but never a live server. */
  static async listen(socketPath: string, handler: ControlHandler): Promise<ControlServer> {
    const s = new ControlServer(socketPath, handler);
    await listenUnix(s.server, socketPath, 0o600, '--control');
    return s;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    fs.rmSync(this.socketPath, { force: true });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const refusal = this.refusal(socket);
    if (refusal) {
      this.handler.log(`control socket: ${refusal}`);
      socket.end(JSON.stringify({ ok: false, error: refusal } satisfies ControlResponse) + '\n');
      return;
    }
    socket.setEncoding('utf8');
    let buffered = '';
    let closing = false;
    socket.on('data', (chunk: string) => {
      if (closing) return;
      buffered += chunk;
      let nl: number;
      while (!closing && (nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) closing = !this.answer(socket, line);
      }
      if (!closing && Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) {
        closing = true;
        this.malformed(socket, `a request line is at most ${MAX_REQUEST_BYTES} bytes`);
      }
    });
  }

  /** Why this peer may not use the socket, if it may not. */
  private refusal(socket: net.Socket): string | undefined {
    let uid: number;
    try {
      uid = peerCredentials(socket).uid;
    } catch (err) {
      return `cannot identify the peer: ${messageOf(err)}`;
    }
    const own = process.geteuid?.() ?? 0;
    if (uid === 0 || uid === own) return undefined;
    return `uid ${uid} may not control the probes: run as root`;
  }

  /** Answers one line; returns false when the connection is being closed. */
  private answer(socket: net.Socket, line: string): boolean {
    let req: ParsedRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      if (!(err instanceof MalformedRequest)) throw err;
      this.malformed(socket, err.message);
      return false;
    }
    let res: ControlResponse;
    try {
      res = this.handle(req);
    } catch (err) {
      // A bug here must cost one request, never the sidecar.
      res = { ok: false, error: `internal error: ${messageOf(err)}` };
    }
    socket.write(JSON.stringify(res) + '\n');
    return true;
  }

  private malformed(socket: net.Socket, why: string): void {
    this.handler.log(`control socket: closed a connection that sent a malformed request (${why})`);
    socket.end(JSON.stringify({ ok: false, error: `malformed request: ${why}; closing` } satisfies ControlResponse) + '\n');
  }

  private handle(req: ParsedRequest): ControlResponse {
    if (!(controlOps as readonly string[]).includes(req.op)) {
      return { ok: false, groups: this.handler.probeStatus(), error: `unknown op ${JSON.stringify(req.op)}; ops are ${controlOps.join(', ')}` };
    }
    if (req.op === 'status') {
      return { ok: true, groups: this.handler.probeStatus(), stats: toJson(this.handler.stats()) as ControlResponse['stats'] };
    }
    if (req.op === 'policy-reload') {
      try {
        return { ok: true, policy: this.handler.reloadPolicy() };
      } catch (err) {
        const error = `policy reload refused, the running policy stays: ${messageOf(err)}`;
        this.handler.log(error);
        return { ok: false, error };
      }
    }
    let groups: SwitchableGroup[];
    try {
      groups = parseGroups(req.groups ?? []);
    } catch (err) {
      if (!(err instanceof GroupError)) throw err;
      return { ok: false, groups: this.handler.probeStatus(), error: err.message };
    }
    const op = req.op as 'attach' | 'detach';
    try {
      this.handler.setProbes(op, groups);
    } catch (err) {
      return { ok: false, groups: this.handler.probeStatus(), error: `${op} ${groups.join(', ')} failed: ${messageOf(err)}` };
    }
    this.handler.log(`probes ${op === 'attach' ? 'attached' : 'detached'}: ${groups.join(', ')}`);
    return { ok: true, groups: this.handler.probeStatus() };
  }
}
