// One appender per file path, shared by every exporter that writes OTLP JSON
// lines to it (traces and metrics go to the same file). Appends are chained, so
// lines from different exporters never interleave: Node writes a large buffer
// in several write() calls, and two handles in append mode could mix them.
// Parent directories are created on the first write. A line is written whole
// or not at all: a write that fails midway (a full disk) is cut back to where
// the line began, so that the next line, once there is room, does not extend
// a broken one. After a failure the handle is closed and the next append
// reopens it.
import { mkdir, open, stat, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ExportHealth } from './exporter.js';
import { AgentraceError, messageOf } from '@agentrace/protocol';

/** A line that was not written; the file holds none of it. */
export class LineFileError extends AgentraceError {
  readonly code = 'AR_ERR_FILE_WRITE';
  constructor(
    message: string,
    /** The errno name (ENOSPC, EACCES, ...), if the system gave one. */
    readonly errnoName: string | undefined,
    /** The first failure since the file was last written: worth saying (the next ones are the same story). */
    readonly first: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface AppendResult {
  /** Set when this line is the first written after failures: how many lines failed meanwhile. */
  recoveredAfter?: number;
}

export interface LineFileRef {
  /** Absolute path. */
  readonly path: string;
  /** Appends `line` plus a newline, whole. Rejects with a LineFileError (the next append retries). */
  appendLine(line: Uint8Array): Promise<AppendResult>;
  /** Failing since the last append failed, until one works. */
  health(): ExportHealth;
  /** Gives the file up; the handle closes once the last user released it and its appends are done. */
  release(): Promise<void>;
}

const NEWLINE = new Uint8Array([0x0a]);

class SharedLineFile {
  users = 0;
  private tail: Promise<unknown>;
  private handle: FileHandle | undefined;
  /** Lines that failed since the last one written. */
  private failing = 0;
  private lastError = '';
  /** Where a line that failed midway began, if cutting it back failed too: cut it on the next open. */
  private cutTo: number | undefined;

  /** `after`: the close of a previous appender of the same path, which must finish its lines first. */
  constructor(readonly path: string, after: Promise<void>) {
    this.tail = after;
  }

  append(line: Uint8Array): Promise<AppendResult> {
    const run = this.tail.then(() => this.write(line));
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.closeHandle();
  }

  private async write(line: Uint8Array): Promise<AppendResult> {
    let start: number | undefined;
    try {
      if (this.handle === undefined) {
        await mkdir(path.dirname(this.path), { recursive: true });
        if (this.cutTo !== undefined) {
          // Only ever shorter: a file rotated meanwhile is not ours to cut.
          if ((await stat(this.path)).size > this.cutTo) await truncate(this.path, this.cutTo);
          this.cutTo = undefined;
        }
        this.handle = await open(this.path, 'a');
      }
      // Where this line begins: another process may append to the file too.
      start = (await this.handle.stat()).size;
      await this.handle.appendFile(concat(line, NEWLINE));
    } catch (error) {
      if (start !== undefined) await this.cutBack(start);
      await this.closeHandle();
      const code = (error as NodeJS.ErrnoException).code;
      const first = this.failing++ === 0;
      this.lastError = messageOf(error);
      throw new LineFileError(`cannot append to ${this.path}: ${messageOf(error)}`, code, first, { cause: error });
    }
    const failed = this.failing;
    this.failing = 0;
    return failed > 0 ? { recoveredAfter: failed } : {};
  }

  health(): ExportHealth {
    return this.failing === 0 ? { ok: true } : { ok: false, reason: `${this.path}: ${this.failing} line(s) not written in a row, the last: ${this.lastError}` };
  }

  /** Cuts off what a failed write left of its line (or notes to, if that fails too). */
  private async cutBack(start: number): Promise<void> {
    try {
      if ((await this.handle!.stat()).size > start) await this.handle!.truncate(start);
    } catch {
      this.cutTo = start;
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
    appendLine: (line) =>
      released ? Promise.reject(new LineFileError(`${absolute}: appender already released`, undefined, false)) : owner.append(line),
    health: () => owner.health(),
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
