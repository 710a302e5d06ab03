// A process's identity as the sidecar pins and reports it: the container id
// found in the cgroup paths container runtimes make, and nothing where there
// is none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerIdIn, pinProcess, stillRunning } from '../src/process-identity.js';

const id = 'a3f1c2'.padEnd(64, '0');

test('the container id of podman, docker, containerd and CRI-O cgroup paths; none on a host', () => {
  assert.equal(containerIdIn(`0::/machine.slice/libpod-${id}.scope\n`), id);
  assert.equal(containerIdIn(`12:pids:/docker/${id}\n0::/docker/${id}\n`), id);
  assert.equal(containerIdIn(`0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-${id}.scope\n`), id);
  assert.equal(containerIdIn(`0::/kubepods/burstable/pod1/crio-${id}.scope\n`), id);
  assert.equal(containerIdIn('0::/user.slice/user-0.slice/session-1.scope\n'), undefined);
  assert.equal(containerIdIn(`0::/system.slice/${id.slice(0, 40)}.service\n`), undefined, 'not 64 hex digits');
});

test('a pinned process runs until it exits; a pid with another start time is not it', () => {
  const me = pinProcess(process.pid);
  assert.ok(stillRunning(me));
  assert.equal(stillRunning({ pid: process.pid, startTime: '1' }), false);
  assert.equal(stillRunning({ pid: process.pid, startTime: undefined }), false);
});
