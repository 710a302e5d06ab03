// This thread's span slot: 32 bytes whose address the kernel learns once, so
// the BPF probes can read the span the thread is running with
// bpf_probe_read_user, and JS publishes a span switch with memory writes only
// (no syscall per switch).
//
// Layout: struct ar_thread_slot of agentrace.h, generated into
// @agentrace/protocol (trace_id, span_id, valid = 1 when a span is set,
// trace_flags, attrs_size always 0, tool: the call's tool word, by which
// the kernel applies that tool's policy: tool-key.ts).
//
// Registration: once per thread per sidecar connection, after that
// connection's `welcome`, the slot is filled with SLOT_MAGIC and written as
// one 32-byte write(2) to /dev/null. A BPF program on sys_enter_write sees a
// 32-byte write starting with the magic from a tracked process and records
// (thread -> user address of the slot). The slot's backing store comes from
// Buffer.allocUnsafeSlow and is referenced for the life of the thread, so its
// address never changes.
import fs from 'node:fs';
import { SLOT_BYTES, SLOT_LAYOUT, SLOT_MAGIC, SLOT_SPAN_NOBODY } from '@agentrace/protocol';
import { RAW_ID_BYTES } from './ids.js';
import { toolKey, toolKeyVersion } from './tool-key.js';

const VALID = SLOT_LAYOUT.valid;
const FLAGS = SLOT_LAYOUT.trace_flags;
const TOOL = SLOT_LAYOUT.tool;


/** The span a slot can hold: raw ids (trace 16 + span 8) and W3C flags. */
export interface SlotSpan {
  readonly raw: Uint8Array;
  readonly flags: number;
  /** The call has ended: callbacks still running in its context are no longer it. */
  readonly ended?: boolean;
  /** Its tool word (0 or absent: none); with toolName, kept current by toolWord(). */
  tool?: number;
  /** gen_ai.tool.name, when the word is keyed from it (tool-key.ts). */
  readonly toolName?: string;
  /** The tool-key version `tool` was made under. */
  toolVersion?: number;
}

/** The span's tool word, keyed again when the policy's patterns changed since it was made. */
function toolWord(span: SlotSpan): number {
  if (span.toolName === undefined) return span.tool ?? 0;
  const v = toolKeyVersion();
  if (span.toolVersion !== v) {
    span.tool = toolKey(span.toolName);
    span.toolVersion = v;
  }
  return span.tool ?? 0;
}

/** What the slot holds for "nobody's": no trace, the NOBODY span id. */
export const NOBODY: SlotSpan = { raw: Buffer.concat([Buffer.alloc(16), Buffer.from(SLOT_SPAN_NOBODY, 'hex')]), flags: 0 };

export class ThreadSlot {
  /** The slot memory itself. Never replaced. */
  readonly buffer: Buffer = Buffer.allocUnsafeSlow(SLOT_BYTES).fill(0);
  private current: SlotSpan | undefined;
  private sinkFd = -1;
  private sinkPath = '/dev/null';
  private closeOnExit = false;
  /** How many registration writes this thread made. */
  registrations = 0;

  /** The span published now, if any. */
  get span(): SlotSpan | undefined {
    return this.current;
  }

  /** Publishes `span` (ids, then valid = 1); returns what was published before. */
  set(span: SlotSpan): SlotSpan | undefined {
    const prev = this.current;
    const b = this.buffer;
    b.set(span.raw, 0);
    b[FLAGS] = span.flags;
    b.writeUInt32LE(toolWord(span), TOOL);
    b[VALID] = 1;
    this.current = span;
    return prev;
  }

  /** No span on this thread: valid = 0. Returns what was published before. */
  clear(): SlotSpan | undefined {
    const prev = this.current;
    this.buffer[VALID] = 0;
    this.current = undefined;
    return prev;
  }

  /** Puts back a state that set()/clear() returned. */
  restore(prev: SlotSpan | undefined): void {
    if (prev === undefined) this.clear();
    else this.set(prev);
  }

  /**
   * Tells the kernel where this slot lives: the magic write, then the current
   * state again. Throws only if the write itself fails (the caller reports it).
   */
  register(): void {
    const b = this.buffer;
    b.write(SLOT_MAGIC, 0, 16, 'latin1');
    b.fill(0, 16, SLOT_BYTES);
    try {
      fs.writeSync(this.fd(), b, 0, SLOT_BYTES);
      this.registrations++;
    } finally {
      this.refill();
    }
  }

  /** Closes the /dev/null descriptor (shutdown); a later register() reopens it. */
  close(): void {
    if (this.sinkFd >= 0) {
      try {
        fs.closeSync(this.sinkFd);
      } catch {
        // already closed: nothing to do
      }
      this.sinkFd = -1;
    }
  }

  /** Test hook: write registrations to `path` (appending) instead of /dev/null. */
  setSink(path: string | undefined): void {
    this.close();
    this.sinkPath = path ?? '/dev/null';
  }

  private fd(): number {
    if (this.sinkFd < 0) {
      // libuv adds O_CLOEXEC itself.
      const { O_WRONLY, O_APPEND, O_CREAT } = fs.constants;
      const flags = this.sinkPath === '/dev/null' ? O_WRONLY : O_WRONLY | O_APPEND | O_CREAT;
      this.sinkFd = fs.openSync(this.sinkPath, flags, 0o600);
      // File descriptors belong to the process: a worker thread that exits
      // must give its descriptor back.
      if (!this.closeOnExit) {
        this.closeOnExit = true;
        process.once('exit', () => this.close());
      }
    }
    return this.sinkFd;
  }

  private refill(): void {
    const b = this.buffer;
    b.fill(0);
    const cur = this.current;
    if (cur) {
      b.set(cur.raw.subarray(0, RAW_ID_BYTES), 0);
      b[FLAGS] = cur.flags;
      b.writeUInt32LE(toolWord(cur), TOOL);
      b[VALID] = 1;
    }
  }
}
