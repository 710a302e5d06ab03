// How a tool is known to the kernel (the thread slot's `tool` word, the
// policy's tables): FNV-1a over the UTF-8 bytes of gen_ai.tool.name, 32 bits.
// The SDK writes it; the sidecar keys the tool's rules by it.

/** FNV-1a (32 bits) of a tool's name. */
export function toolHash(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}
