// The agent socket's limits (issue 11): connections per user and in all,
// unfinished frames bounded in time and bytes. A client over its share is
// told why and closed; nobody else notices.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { encodeFrame, FrameDecoder, type Message } from '@agentrace/sdk/protocol';
import { SocketServer, type ConnectionHandlers, type SocketLimits } from '../packages/sidecar/src/socket-server.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-socket-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function serve(limits: Partial<SocketLimits>): Promise<{ server: SocketServer; closed: number[]; hellos: number[] }> {
  const closed: number[] = [];
  const hellos: number[] = [];
  const handlers: ConnectionHandlers = {
    onHello: (c) => hellos.push(c.id),
    onSpanStart: () => {},
    onSpanEnd: () => {},
    onClose: (c) => closed.push(c.id),
    onProtocolError: () => {},
  };
  const server = await SocketServer.listen(path.join(dir, `s${++n}.sock`), handlers, 'test', limits);
  return { server, closed, hellos };
}

interface Client {
  sock: net.Socket;
  replies: Message[];
  ended: Promise<unknown>;
}

async function connect(server: SocketServer): Promise<Client> {
  const sock = net.connect(server.socketPath);
  const replies: Message[] = [];
  const decoder = new FrameDecoder();
  sock.on('data', (d: Buffer) => replies.push(...decoder.push(d)));
  sock.on('error', () => {});
  const ended = once(sock, 'close');
  await once(sock, 'connect');
  return { sock, replies, ended };
}

const hello = encodeFrame({ t: 'hello', sdk: 'test', runtime: 'node', resource: {} });

test("one user's connections are capped at its share; over it a client is told why and closed", async () => {
  const { server, hellos } = await serve({ maxConnectionsPerUser: 3 });
  try {
    const ok = await Promise.all([connect(server), connect(server), connect(server)]);
    const over = await connect(server);
    await over.ended;
    assert.equal(over.replies[0]?.t, 'error');
    assert.match((over.replies[0] as { message: string }).message, /its share/);
    for (const c of ok) c.sock.write(hello);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(hellos.length, 3, 'the others are served');
    assert.equal(server.stats().refusedConnections, 1);
    // A connection that closes gives its room back.
    ok[0]!.sock.destroy();
    await ok[0]!.ended;
    await new Promise((r) => setTimeout(r, 50));
    const again = await connect(server);
    again.sock.write(hello);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(hellos.length, 4);
    for (const c of [...ok, again]) c.sock.destroy();
  } finally {
    await server.close();
  }
});

test('a frame begun and not finished in time closes its connection, and only it', async () => {
  const { server, hellos } = await serve({ partialFrameMs: 300 });
  try {
    const drip = await connect(server);
    const good = await connect(server);
    drip.sock.write(hello.subarray(0, 7)); // half a frame, never finished
    const t0 = Date.now();
    const timer = setInterval(() => good.sock.write(hello), 100);
    await drip.ended;
    clearInterval(timer);
    assert.ok(Date.now() - t0 >= 250, 'not before its time');
    assert.equal(server.stats().partialFrameTimeouts, 1);
    assert.ok(hellos.length >= 3, 'the well-behaved client was served meanwhile');
    assert.equal(good.sock.destroyed, false);
    good.sock.destroy();
  } finally {
    await server.close();
  }
});

test('unfinished frames over all connections are bounded in bytes: the client that passes the budget is closed', async () => {
  const { server } = await serve({ maxPendingBytes: 100_000 });
  try {
    const a = await connect(server);
    const b = await connect(server);
    const frameOf = (bytes: number): Buffer => encodeFrame({ t: 'hello', sdk: 'x'.repeat(bytes), runtime: 'node', resource: {} });
    a.sock.write(frameOf(200_000).subarray(0, 60_000));
    await new Promise((r) => setTimeout(r, 100));
    b.sock.write(frameOf(200_000).subarray(0, 60_000));
    await b.ended;
    assert.equal((b.replies[0] as { code?: string })?.code, 'ENOBUFS');
    assert.equal(server.stats().pendingBudgetClosed, 1);
    assert.equal(a.sock.destroyed, false, 'the first client keeps its connection');
    a.sock.destroy();
  } finally {
    await server.close();
  }
});
