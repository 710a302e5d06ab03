// The socket protocol's frame decoder: the same messages whatever the
// chunking, errors on bad frames, and linear in the bytes received (a peer
// that drips a large frame costs no more than its bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, ProtocolError, type Message } from '@agentrace/protocol';

function frames(n: number): { bytes: Buffer; messages: Message[] } {
  const messages: Message[] = [];
  for (let i = 0; i < n; i++) {
    messages.push(
      i % 3 === 0
        ? { t: 'hello', sdk: `sdk ${i}`, runtime: 'node', resource: { 'service.name': `s${i}` } }
        : { t: 'end', span: randomBytes(8), end: [i, i * 7], status: { code: i % 3 }, attrs: { note: 'x'.repeat(i * 13) } },
    );
  }
  return { bytes: Buffer.concat(messages.map((m) => encodeFrame(m))), messages };
}

test('the same messages whatever the chunking: whole, byte by byte, random cuts', () => {
  const { bytes, messages } = frames(60);
  const normalise = (ms: Message[]) => JSON.parse(JSON.stringify(ms, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
  const expected = normalise(messages);
  const cut = (sizes: () => number): Message[] => {
    const d = new FrameDecoder();
    const out: Message[] = [];
    for (let off = 0; off < bytes.length; ) {
      const n = Math.min(sizes(), bytes.length - off);
      out.push(...d.push(bytes.subarray(off, off + n)));
      off += n;
    }
    assert.equal(d.pending, 0);
    return out;
  };
  assert.deepEqual(normalise(cut(() => bytes.length)), expected);
  assert.deepEqual(normalise(cut(() => 1)), expected);
  for (let round = 0; round < 20; round++) assert.deepEqual(normalise(cut(() => 1 + Math.floor(Math.random() * 300))), expected);
});

test('a large frame dripped in small chunks is copied once, not once per chunk', () => {
  const big = encodeFrame({ t: 'end', span: randomBytes(8), end: [1, 0], status: { code: 0 }, attrs: { blob: 'y'.repeat(MAX_FRAME_BYTES - 200) } });
  const d = new FrameDecoder();
  const out: Message[] = [];
  for (let off = 0; off < big.length; off += 64) out.push(...d.push(big.subarray(off, off + 64)));
  assert.equal(out.length, 1);
  // The old decoder re-joined everything pending on every chunk: ~(n/64)·n/2 bytes.
  assert.ok(d.copied <= big.length, `${d.copied} bytes copied for a ${big.length}-byte frame`);
});

test('bad frames are refused with their code, also when the header straddles chunks', () => {
  const tooBig = Buffer.alloc(8);
  tooBig.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
  const d = new FrameDecoder();
  assert.deepEqual(d.push(tooBig.subarray(0, 2)), []);
  assert.throws(() => d.push(tooBig.subarray(2)), (e: unknown) => e instanceof ProtocolError && e.code === 'AR_ERR_PROTOCOL' && e.name === 'ProtocolError' && e.wireCode === 'EMSGSIZE');
  const frame = encodeFrame({ t: 'hello', sdk: 'x', runtime: 'y', resource: {} });
  frame.writeUInt8(9, 4);
  assert.throws(() => new FrameDecoder().push(frame), (e: unknown) => e instanceof ProtocolError && e.wireCode === 'EPROTO');
  const garbage = Buffer.concat([Buffer.from([0, 0, 0, 3, 1]), Buffer.from([0xc1, 0xc1])]);
  assert.throws(() => new FrameDecoder().push(garbage), (e: unknown) => e instanceof ProtocolError && e.wireCode === 'EBADMSG');
});
