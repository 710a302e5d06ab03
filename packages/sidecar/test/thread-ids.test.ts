// ThreadIds against a real PID namespace (unshare --pid --fork --mount-proc):
// an agent's thread ids, as its own /proc names them, are translated to the
// sidecar's; another process's ids in the same namespace, a gone thread and
// a made-up id translate to nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ThreadIds, nsPids } from '../src/thread-ids.js';

// In the namespace: node (pid 1) with a worker thread, and a child `sleep`.
const script = `
  const fs = require('node:fs');
  const { Worker } = require('node:worker_threads');
  const { spawn } = require('node:child_process');
  const w = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:fs').readlinkSync('/proc/thread-self')); setInterval(() => {}, 1000)", { eval: true });
  w.once('message', (self) => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    console.log(JSON.stringify({ pid: process.pid, workerTid: Number(self.split('/')[2]), childPid: child.pid }));
  });`;

const started: number[] = [];
after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

test("an agent in its own PID namespace: its threads translate to the sidecar's ids, and nothing else does", async () => {
  const unshare = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(unshare.pid!);
  const [line] = (await once(unshare.stdout.setEncoding('utf8'), 'data')) as [string];
  const inside = JSON.parse(line) as { pid: number; workerTid: number; childPid: number };
  assert.equal(inside.pid, 1, 'node is pid 1 of its namespace');
  // The sidecar's pid for it: unshare's only child.
  const host = Number(fs.readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim());
  assert.ok(host > 1);
  assert.deepEqual(nsPids(host), [host, 1]);

  const ids = new ThreadIds(host);
  assert.deepEqual(ids.namespaceOf(1), [host, 1]);
  assert.equal(ids.sameNamespace, false);
  assert.equal(ids.resolve(1), host, 'its main thread');
  const worker = ids.resolve(inside.workerTid);
  assert.ok(worker !== undefined && worker !== inside.workerTid, `its worker thread ${inside.workerTid} is ${worker} to the sidecar`);
  assert.ok(fs.existsSync(`/proc/${host}/task/${worker}`));
  assert.deepEqual(nsPids(host, worker), [worker, inside.workerTid]);
  assert.equal(ids.resolve(inside.childPid), undefined, "its child's id is another process's: not its thread");
  assert.equal(ids.resolve(4_000_000), undefined, 'an id that is no thread');

  // Without a claim: its own namespace, as a container's /proc shows it.
  assert.deepEqual(new ThreadIds(host).namespaceOf(undefined), [host, 1]);
  // An agent whose /proc is the sidecar's names the sidecar's ids.
  const hostView = new ThreadIds(host);
  hostView.namespaceOf(host);
  assert.equal(hostView.sameNamespace, true);
  assert.equal(hostView.resolve(host), host);
  assert.equal(hostView.resolve(worker), worker);

  unshare.kill('SIGKILL');
  await once(unshare, 'exit');
  // (--kill-child: the namespace's processes go with it)
  for (let i = 0; i < 250 && fs.existsSync(`/proc/${host}`); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ids.resolve(1), undefined, 'a gone process has no threads');
  assert.equal(ids.namespaceOf(1), undefined);
});
