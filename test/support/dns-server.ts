// A DNS server on 127.0.0.1 (UDP; port 53 unless asked for another, 0: any
// free one) that answers every query NXDOMAIN, so resolvers under test never
// send a query off the machine.
import dgram from 'node:dgram';
import { once } from 'node:events';

export interface DnsServer {
  /** Names asked, in order. */
  readonly asked: string[];
  readonly port: number;
  close(): void;
}

export async function startDnsServer(port = 53): Promise<DnsServer> {
  const sock = dgram.createSocket('udp4');
  const asked: string[] = [];
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const labels: string[] = [];
    for (let off = 12; off < msg.length && msg[off] !== 0; off += 1 + msg[off]!) {
      labels.push(msg.toString('latin1', off + 1, off + 1 + msg[off]!));
    }
    asked.push(labels.join('.'));
    const reply = Buffer.from(msg);
    reply[2] = 0x80 | (msg[2]! & 0x01); // QR, keep RD
    reply[3] = 0x80 | 3; // RA, RCODE NXDOMAIN
    sock.send(reply, rinfo.port, rinfo.address);
  });
  sock.bind(port, '127.0.0.1');
  await once(sock, 'listening');
  return { asked, port: sock.address().port, close: () => sock.close() };
}
