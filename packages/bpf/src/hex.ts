/** `hex` as `bytes` bytes; a TypeError naming `what` when it is not exactly that many hex digits. */
export function parseHex(hex: string, bytes: number, what: string): Buffer {
  if (hex.length !== bytes * 2 || !/^[0-9a-f]+$/i.test(hex)) {
    throw new TypeError(`${what} must be ${bytes * 2} hex digits, got ${JSON.stringify(hex)}`);
  }
  return Buffer.from(hex, 'hex');
}
