// What the native addon throws is the package's typed BpfError (an
// AgentraceError with code AR_ERR_BPF), carrying the errno's name and number
// and what libbpf logged; the message says what failed and what to do.
// Needs the built addon, not BPF privileges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentraceError } from '@agentrace/protocol';
// One module graph: the addon has one error class per process, set by the
// copy of this package that loads it.
import { BpfError, isBpfError } from '../src/errors.js';
import { native } from '../src/native.js';
import { Probes } from '../src/probes.js';

test('a failing addon call throws a BpfError with the errno and a message that names the call', () => {
  const missing = path.join(os.tmpdir(), `agentrace-no-such-binary-${process.pid}`);
  assert.throws(
    () => native().resolveFunctions(missing, ['uv_queue_work']),
    (err: unknown) => {
      assert.ok(err instanceof BpfError, `not a BpfError: ${String(err)}`);
      assert.ok(err instanceof AgentraceError);
      assert.ok(isBpfError(err));
      assert.equal(err.code, 'AR_ERR_BPF');
      assert.equal(err.name, 'BpfError');
      assert.equal(err.errnoName, 'ENOENT');
      assert.equal(err.errno, 2);
      assert.equal(typeof err.libbpfLog, 'string');
      assert.match(err.message, new RegExp(`resolveFunctions\\(${missing}\\) failed: ENOENT \\(No such file or directory\\)`));
      return true;
    },
  );
});

test('an object that is not BPF fails to load with a BpfError carrying what libbpf said', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-errors-'));
  try {
    const bogus = path.join(dir, 'bogus.bpf.o');
    fs.writeFileSync(bogus, 'not an ELF object');
    assert.throws(
      () => Probes.load({ objectPath: bogus }),
      (err: unknown) => {
        assert.ok(err instanceof BpfError, `not a BpfError: ${String(err)}`);
        assert.match(err.message, /bogus\.bpf\.o/);
        assert.notEqual(err.libbpfLog, '', 'libbpf said why');
        return true;
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
