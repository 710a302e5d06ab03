// Who is on the other end of a Unix socket, according to the kernel.
import type { Socket } from 'node:net';
import { native, type PeerCredentials } from './native.js';

/** SO_PEERCRED of a connected Unix socket: the pid/uid/gid the kernel recorded at connect. */
export function peerCredentials(socket: Socket): PeerCredentials {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('peerCredentials: the socket has no file descriptor (not connected, or not a Unix socket)');
  }
  return native().peerCredentials(fd);
}
