// How a tool is known to the kernel (the thread slot's `tool` word, the
// policy's tables): FNV-1a, 32 bits, over the UTF-8 bytes of the first of the
// policy's tool patterns that matches gen_ai.tool.name (the name itself when
// none does). The SDK writes it; the sidecar keys each pattern's rules by it.

/** FNV-1a (32 bits) of a tool's name. */
export function toolHash(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

/** A tool pattern: `*` any run of characters, `?` one; everything else itself. */
export function toolPattern(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${body}$`, 's');
}

/** Matches tool names against a policy's patterns, first match wins. */
export class ToolPatterns {
  private readonly matchers: Array<{ pattern: string; re: RegExp | undefined }>;

  constructor(readonly patterns: readonly string[] = []) {
    // names without * or ? need no regular expression
    this.matchers = patterns.map((pattern) => ({ pattern, re: /[*?]/.test(pattern) ? toolPattern(pattern) : undefined }));
  }

  /** The first pattern that matches `name`, or undefined. */
  match(name: string): string | undefined {
    for (const m of this.matchers) if (m.re ? m.re.test(name) : m.pattern === name) return m.pattern;
    return undefined;
  }

  /** The tool word of a call of `name`: the hash of its pattern, or of the name. */
  key(name: string): number {
    return toolHash(this.match(name) ?? name);
  }
}
