// This thread's SDK state: its configuration, its sidecar connection, its
// span slot and its OS thread id. Each JS thread (main, every worker)
// loads its own instance of this module and so has its own of each.
import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { resolveConfig, resourceAttributes, SDK_NAME, SDK_VERSION, type AgentraceConfig, type ResolvedConfig } from './config.js';
import type { HelloMessage } from './protocol.js';
import { SidecarClient } from './sidecar-client.js';
import { ThreadSlot } from './thread-slot.js';
import { warn } from './warn.js';

let overrides: AgentraceConfig = {};
let config: ResolvedConfig | undefined;
let client: SidecarClient | undefined;
let tid: number | undefined;
/** The generation of the connection the slot was last registered on. */
let registeredOn: number | undefined;

/** This thread's span slot; referenced for the life of the thread. */
export const slot = new ThreadSlot();

function currentConfig(): ResolvedConfig {
  return (config ??= resolveConfig(overrides));
}

/** The OS thread id of this JS thread ("PID/task/TID" of /proc/thread-self). */
export function threadId(): number {
  if (tid === undefined) {
    try {
      const link = fs.readlinkSync('/proc/thread-self');
      tid = Number(link.slice(link.lastIndexOf('/') + 1)) || 0;
    } catch {
      tid = isMainThread ? process.pid : 0;
    }
  }
  return tid;
}

function hello(): HelloMessage {
  return {
    t: 'hello',
    sdk: `${SDK_NAME} ${SDK_VERSION}`,
    runtime: `node ${process.version}`,
    resource: resourceAttributes(currentConfig()),
  };
}

function onWelcome(): void {
  const c = client;
  if (!c) return;
  try {
    slot.register();
    registeredOn = c.currentGeneration;
  } catch (err) {
    warn(
      'AGENTRACE_SLOT',
      `agentrace: cannot register the thread slot (${(err as { code?: string }).code ?? String(err)}); ` +
        'kernel attribution falls back to the per-thread map',
    );
  }
}

/** This thread's connection, created and started on first use. */
export function sidecar(): SidecarClient {
  if (!client) {
    client = new SidecarClient({ socketPath: currentConfig().socketPath, hello, onWelcome });
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
  slot.close();
}

/**
 * Resolves true once the sidecar tracks this process and this thread's slot
 * is registered, so that from then on every tool call's first syscall is
 * attributed; false after `timeoutMs` (default 1 s) if no sidecar answered.
 * Never rejects. Optional: without it, calls made in the first milliseconds
 * after start-up may reach the kernel before the sidecar tracks the process.
 */
export async function ready(timeoutMs = 1000): Promise<boolean> {
  try {
    const ok = await sidecar().whenWelcomed(timeoutMs);
    return ok && slotRegistered();
  } catch {
    return false;
  }
}
