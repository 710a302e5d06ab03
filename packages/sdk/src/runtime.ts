// This thread's SDK state: its configuration, its sidecar connection, its
// span slot and its OS thread id. Each JS thread (main, every worker)
// loads its own instance of this module and so has its own of each.
import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { resolveConfig, resourceAttributes, SDK_NAME, SDK_VERSION, type AgentraceConfig, type ResolvedConfig } from './config.js';
import { toolPatternsPath, type FramesAnswer, type HelloMessage, type WelcomeMessage } from '@agentrace/protocol';
import { contextFrames, runWithRecord } from './call-records.js';
import { setToolPatterns } from './tool-key.js';
import { SidecarClient } from './sidecar-client.js';
import { NOBODY, ThreadSlot } from './thread-slot.js';
import { warn } from './warn.js';

let overrides: AgentraceConfig = {};
let config: ResolvedConfig | undefined;
let client: SidecarClient | undefined;
let ids: { pid: number; tid: number } | undefined;
/** The generation of the connection the slot was last registered on. */
let registeredOn: number | undefined;
/** The slot was written once at start-up (which declares the process to a running sidecar's kernel). */
let declared = false;
let slotBroken = false;

/** This thread's span slot; referenced for the life of the thread. */
export const slot = new ThreadSlot();

function currentConfig(): ResolvedConfig {
  return (config ??= resolveConfig(overrides));
}

/** This thread's ids as its /proc names them ("PID/task/TID" of /proc/thread-self): its PID namespace's. */
function procIds(): { pid: number; tid: number } {
  if (ids === undefined) {
    try {
      const [pid, , t] = fs.readlinkSync('/proc/thread-self').split('/');
      ids = { pid: Number(pid) || 0, tid: Number(t) || 0 };
    } catch {
      ids = { pid: process.pid, tid: isMainThread ? process.pid : 0 };
    }
  }
  return ids;
}

/** The OS thread id of this JS thread, in its PID namespace (the sidecar translates it). */
export function threadId(): number {
  return procIds().tid;
}

function hello(): HelloMessage {
  return {
    t: 'hello',
    sdk: `${SDK_NAME} ${SDK_VERSION}`,
    runtime: `node ${process.version}`,
    resource: resourceAttributes(currentConfig()),
    pid: procIds().pid,
    policy: true,
    frames: contextFrames,
  };
}

/**
 * The policy's tool patterns the sidecar left beside its socket: known
 * before the welcome, so a call made at once is keyed right (tool-key.ts).
 * No file, or one that cannot be read: the welcome brings them.
 */
function readToolPatterns(socketPath: string): void {
  try {
    const list: unknown = JSON.parse(fs.readFileSync(toolPatternsPath(socketPath), 'utf8'));
    if (Array.isArray(list)) setToolPatterns(list.filter((t): t is string => typeof t === 'string'));
  } catch {
    // none: no policy, or an older sidecar
  }
}

function registerSlot(): boolean {
  if (slotBroken) return false;
  try {
    // From inside the call storage, with the slot itself as its store: the
    // kernel proves it can find the thread's calls in its async context by
    // finding the slot there (the frame rung; nothing without AsyncContextFrame).
    runWithRecord(slot.buffer, () => slot.register());
    return true;
  } catch (err) {
    slotBroken = true;
    warn(
      'AGENTRACE_SLOT',
      `agentrace: cannot register the thread slot (${(err as { code?: string }).code ?? String(err)}); ` +
        'kernel attribution falls back to the per-thread map',
    );
    return false;
  }
}

/** The SDK's own socket I/O is nobody's: the slot says so while it runs. */
function outsideCalls<T>(fn: () => T): T {
  const prev = slot.set(NOBODY);
  try {
    // and no call's in the async context the socket's callbacks will run in
    return runWithRecord(undefined, fn);
  } finally {
    slot.restore(prev);
  }
}

let framesListener: (() => void) | undefined;

/** Runs `fn` once the kernel reads this thread's calls from its async context (context-tracker.ts turns its hook off). */
export function onKernelReadsFrames(fn: () => void): void {
  framesListener = fn;
}

let framesWarned = false;

/**
 * Says why the kernel reads no async context here, and what that costs:
 * when the sidecar says this is the process's first refusal (so once per
 * process, whichever of its threads hears it first).
 */
function framesRefused(answer: FramesAnswer): void {
  if (!contextFrames || !answer.warn || framesWarned) return;
  framesWarned = true;
  const reason = answer.reason ?? 'no reason given';
  warn(
    'AGENTRACE_CONTEXT_HOOK',
    `agentrace: the kernel cannot read tool calls from this Node's async context (${reason}); ` +
      'the SDK follows them with an async hook instead (exact, ~250 ns per await while calls run)',
  );
}

function onFrames(answer: FramesAnswer): void {
  if (answer.ok) framesListener?.();
  else framesRefused(answer);
}

function onWelcome(msg: WelcomeMessage): void {
  setToolPatterns(Array.isArray(msg.tools) ? msg.tools.filter((t): t is string => typeof t === 'string') : []);
  const c = client;
  if (!c) return;
  // Again on every connection: a sidecar started after us never saw the first one.
  if (!registerSlot()) return;
  registeredOn = c.currentGeneration;
  if (!contextFrames || msg.frames === undefined) return; // an older sidecar: the hook, silently
  if (msg.frames.ok) c.checkFrames(threadId());
  else framesRefused(msg.frames);
}

/**
 * This thread's connection, created and started on first use. Its first
 * act is to register this thread's slot: to a sidecar already running,
 * that write declares the process, which is traced from then on, before
 * any round trip on the socket (the sidecar confirms it at hello).
 */
export function sidecar(): SidecarClient {
  if (!client) {
    readToolPatterns(currentConfig().socketPath);
    if (!declared) declared = registerSlot();
    client = new SidecarClient({ socketPath: currentConfig().socketPath, hello, onWelcome, onPolicy: setToolPatterns, onFrames, outsideCalls });
    client.start();
  }
  return client;
}

/** True when the slot is registered on the current, welcomed connection. */
export function slotRegistered(): boolean {
  // On every tool call's path: no stats object, just two fields.
  return client !== undefined && client.isWelcomed && registeredOn === client.currentGeneration;
}

/**
 * True when a sidecar may be reading the slot: it is registered, and a
 * sidecar answered or is being connected to (not known to be absent).
 * Keeping the slot current costs a hook per async switch: not worth it
 * with nobody reading.
 */
export function slotMayBeRead(): boolean {
  return client !== undefined && (declared || registeredOn !== undefined) && !slotBroken && client.mayBeServed;
}

/**
 * Changes the configuration. A new socket path closes the current
 * connection (its queued frames are dropped) and connects to the new one;
 * after shutdown(), configure() allows connecting again.
 */
export function configure(next: AgentraceConfig): void {
  overrides = { ...overrides, ...next };
  const resolved = resolveConfig(overrides);
  const old = client;
  config = resolved;
  if (old && (old.socketPath !== resolved.socketPath || old.stats().closed)) {
    client = undefined;
    registeredOn = undefined;
    void old.close(0);
    sidecar();
  }
}

export function currentSocketPath(): string {
  return currentConfig().socketPath;
}

/** Sends what is queued (waits at most ~1 s). Never rejects. */
export async function flush(): Promise<void> {
  try {
    await client?.flush();
  } catch {
    // never reject into the agent
  }
}

/** Flushes, then closes this thread's connection. Tool calls keep working, without the sidecar. */
export async function shutdown(): Promise<void> {
  try {
    await client?.close();
  } catch {
    // never reject into the agent
  }
  registeredOn = undefined;
  declared = false;
  slot.close();
}

/**
 * Resolves true once the sidecar has confirmed this process (its hello
 * answered) and this thread's slot is registered on that connection; false
 * at once when no sidecar listens, or after `timeoutMs` (default 1 s).
 * Never rejects. Not needed for attribution: the SDK's first slot write
 * declares the process to the kernel, so tool calls are attributed from
 * their first syscall either way. It is a way to know that a sidecar is
 * there and to make the first call's span skip the per-thread-map fallback.
 */
export async function ready(timeoutMs = 1000): Promise<boolean> {
  try {
    const ok = await sidecar().whenWelcomed(timeoutMs);
    return ok && slotRegistered();
  } catch {
    return false;
  }
}
