// `run`'s command, traced from its first instruction: it is started behind
// a gate (a shell that waits on a pipe, then execs the command in its own
// place, keeping its pid), tracked while it waits, then let go. So the
// agent and everything it forks are traced from their first syscall,
// whether or not they ever talk to the sidecar.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The shell the gate runs in; `exec` replaces it with the command (same pid). */
const GATE_SHELL = '/bin/sh';
const GATE = 'read -r _ <&3; exec 3<&-; exec "$@"';

/** Where `command` would be found (as a shell finds it through PATH), or undefined. */
export function resolveCommand(command: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = command.includes('/')
    ? [command]
    : (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').map((dir) => path.join(dir || '.', command));
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return path.resolve(file);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The binaries `file` runs as: itself, or for a script its interpreter
 * (`#!/usr/bin/env node` resolved through PATH), realpath'd.
 */
export function binariesOf(file: string, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const add = (p: string | undefined): void => {
    if (p === undefined) return;
    try {
      out.push(fs.realpathSync(p));
    } catch {
      // gone meanwhile
    }
  };
  let head = '';
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(256);
      head = buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return out;
  }
  if (!head.startsWith('#!')) {
    add(file);
    return out;
  }
  const [interpreter, arg] = head.slice(2).split('\n')[0]!.trim().split(/\s+/);
  if (interpreter === undefined) return out;
  if (path.basename(interpreter) === 'env' && arg !== undefined) add(resolveCommand(arg, env));
  else add(interpreter);
  return out;
}

export interface Gated {
  child: ChildProcess;
  /** Lets the command run (once). */
  release(): void;
}

/** Starts `command` held at the gate: its pid is known, it has run nothing of its own yet. */
export function startGated(command: readonly string[], env: NodeJS.ProcessEnv): Gated {
  const child = spawn(GATE_SHELL, ['-c', GATE, 'agentrace', ...command], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env,
  });
  const gate = child.stdio[3] as NodeJS.WritableStream | null;
  let released = false;
  return {
    child,
    release: () => {
      if (released) return;
      released = true;
      gate?.on('error', () => {}); // the gate died before it read: its exit says why
      gate?.end('\n');
    },
  };
}
