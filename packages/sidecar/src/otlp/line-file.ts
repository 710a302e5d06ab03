// One appender per file path, shared by every exporter that writes OTLP JSON
// lines to it (traces and metrics go to the same file). Appends are chained, so
// lines from different exporters never interleave: Node writes a large buffer
// in several write() calls, and two handles in append mode could mix them.
// Parent directories are created on the first write; after a failed write the
// handle is closed and the next append reopens it.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export interface LineFileRef {
  /** Absolute path. */
  readonly path: string;
  /** Appends `line` plus a newline. Rejects with the I/O error (the next append retries the open). */
  appendLine(line: Uint8Array): Promise<void>;
  /** Gives the file up; the handle closes once the last user released it and its appends are done. */
  release(): Promise<void>;
}

const NEWLINE = new Uint8Array([0x0a]);

class SharedLineFile {
  users = 0;
  private tail: Promise<unknown>;
  private handle: FileHandle | undefined;

  /** `after`: the close of a previous appender of the same path, which must finish its lines first. */
  constructor(readonly path: string, after: Promise<void>) {
    this.tail = after;
  }

  append(line: Uint8Array): Promise<void> {
    const run = this.tail.then(() => this.write(line));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.closeHandle();
  }

  private async write(line: Uint8Array): Promise<void> {
    try {
      if (this.handle === undefined) {
        await mkdir(path.dirname(this.path), { recursive: true });
        this.handle = await open(this.path, 'a');
      }
      await this.handle.appendFile(concat(line, NEWLINE));
    } catch (error) {
      await this.closeHandle();
      throw error;
    }
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) {
      try {
        await handle.close();
      } catch {
        // nothing left to do with a handle that will not close
      }
    }
  }
}

const files = new Map<string, SharedLineFile>();
const closing = new Map<string, Promise<void>>();

/** The shared appender of `file` (resolved against the working directory). */
export function acquireLineFile(file: string): LineFileRef {
  const absolute = path.resolve(file);
  let shared = files.get(absolute);
  if (shared === undefined) {
    shared = new SharedLineFile(absolute, closing.get(absolute) ?? Promise.resolve());
    files.set(absolute, shared);
  }
  shared.users++;
  const owner = shared;
  let released = false;
  return {
    path: absolute,
    appendLine: (line) => (released ? Promise.reject(new Error(`${absolute}: appender already released`)) : owner.append(line)),
    release: async () => {
      if (released) return;
      released = true;
      owner.users--;
      if (owner.users > 0) return;
      if (files.get(absolute) === owner) files.delete(absolute);
      const closed = owner.close();
      closing.set(absolute, closed);
      await closed;
      if (closing.get(absolute) === closed) closing.delete(absolute);
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
