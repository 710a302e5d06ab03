// Client side of the control socket: one request, one response line. Errors
// say what to do (start a sidecar, pass --control, run as root).
import net from 'node:net';
import type { ControlRequest, ControlResponse } from './control-protocol.js';

export const DEFAULT_CONTROL_SOCKET = '/run/agentrace/control.sock';

/** Sends `req` to the sidecar at `socketPath` and resolves with its answer (ok or not). */
export function controlRequest(socketPath: string, req: ControlRequest, timeoutMs = 5000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffered = '';
    let settled = false;
    const finish = (err: Error | undefined, res?: ControlResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(
      () => finish(new Error(`the sidecar at ${socketPath} did not answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(JSON.stringify(req) + '\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(undefined, JSON.parse(buffered.slice(0, nl)) as ControlResponse);
      } catch {
        finish(new Error(`the sidecar at ${socketPath} answered with something that is not JSON: ${buffered.slice(0, 200)}`));
      }
    });
    socket.once('end', () => finish(new Error(`the sidecar at ${socketPath} closed the connection without answering`)));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(connectError(socketPath, err)));
  });
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): Error {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTDIR':
      return new Error(`no sidecar at ${socketPath}: start \`agentrace sidecar\` or pass --control`);
    case 'EACCES':
    case 'EPERM':
      return new Error(`permission denied on ${socketPath}: the control socket is root-only; run as root (e.g. sudo agentrace probes ...)`);
    default:
      return new Error(`cannot reach the sidecar at ${socketPath}: ${err.message}`);
  }
}
