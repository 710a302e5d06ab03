// Drives test/fixtures/actor.mjs: a real process that performs one action per
// command, so a test can track it (or not) before it acts.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const actorPath = fileURLToPath(new URL('../fixtures/actor.mjs', import.meta.url));

export interface ActorReply {
  ok?: boolean;
  code?: string;
  status?: number | null;
  ready?: boolean;
  pid?: number;
  address?: string;
  fd?: number;
  written?: number;
  read?: number;
  received?: Array<{ t: string; code?: string; message?: string; pid?: number }>;
}

export type ActorCommand =
  | { op: 'open'; path: string; flags?: string }
  | { op: 'openAsync'; path: string }
  | { op: 'openKeep'; path: string; flags: string }
  | { op: 'openMany'; path: string; count: number }
  | { op: 'writeFd'; fd: number; bytes: number }
  | { op: 'readFd'; fd: number; bytes: number }
  | { op: 'closeFd'; fd: number }
  | { op: 'lookup'; name: string }
  | { op: 'resolve'; name: string; server: string }
  | { op: 'connect'; host?: string; port?: number; path?: string }
  | { op: 'spawn'; file: string; args: string[] }
  | { op: 'slotRegister' }
  | { op: 'slotSet'; traceId: string; spanId: string }
  | { op: 'slotClear' }
  | { op: 'sidecarConnect'; path: string }
  | { op: 'sidecarSend'; frame: Record<string, unknown>; waitFor?: string }
  | { op: 'startThread' }
  | { op: 'stopThread' };

export class Actor {
  readonly pid: number;
  private readonly replies: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcess,
    lines: readline.Interface,
  ) {
    this.pid = child.pid ?? -1;
    this.replies = lines[Symbol.asyncIterator]();
  }

  /**
   * Starts an actor. With `hostsFile`, it runs in its own mount namespace
   * with that file bind-mounted over /etc/hosts, so its name lookups are
   * answered locally and never leave the machine. With `uid`, it runs as
   * that user (and group).
   */
  static async start(opts: { hostsFile?: string; uid?: number } = {}): Promise<Actor> {
    // As another user (an unprivileged local attacker): its own uid and gid, no groups.
    const as = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid };
    const child = opts.hostsFile
      ? spawn(
          'unshare',
          ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$1" "$2"', opts.hostsFile, process.execPath, actorPath],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        )
      : spawn(process.execPath, [actorPath], { stdio: ['pipe', 'pipe', 'inherit'], ...as });
    const lines = readline.createInterface({ input: child.stdout! });
    const actor = new Actor(child, lines);
    const ready = await actor.next();
    if (!ready.ready) throw new Error(`actor did not start: ${JSON.stringify(ready)}`);
    return actor;
  }

  private async next(): Promise<ActorReply> {
    const r = await this.replies.next();
    if (r.done) throw new Error(`actor ${this.pid} exited before replying`);
    return JSON.parse(r.value) as ActorReply;
  }

  async do(cmd: ActorCommand): Promise<ActorReply> {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
    return this.next();
  }

  /** Asks the actor to exit with `code` and waits until it has. */
  async exit(code: number): Promise<void> {
    const exited = once(this.child, 'exit');
    this.child.stdin!.write(JSON.stringify({ op: 'exit', code }) + '\n');
    await exited;
  }

  /** Stops the actor by its pid if it is still running. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
