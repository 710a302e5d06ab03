// A TCP port on 127.0.0.1 nobody listens on (for a collector that starts later, or never).
import net from 'node:net';
import { once } from 'node:events';

export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
