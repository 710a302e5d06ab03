// The OTLP file on a full filesystem (a small tmpfs): lines are written whole
// or not at all, the failure is said once and counted, and writing resumes,
// said too, once there is room again. Every line of the file parses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { OtlpFileExporter } from '../packages/sidecar/src/otlp/index.js';
import { manySpans, otlpJsonViolations } from './otlp-schema.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-otlp-full-'));
const mnt = path.join(root, 'mnt');
let mounted = false;
after(() => {
  if (mounted) execFileSync('umount', [mnt]);
  fs.rmSync(root, { recursive: true, force: true });
});

/** Spans of about 1.4 KB each in OTLP/JSON: a batch of 8 is a line of about 11 KB, more than two pages. */
function bigSpans(seed: number) {
  return manySpans(8, seed).map((s) => ({ ...s, attributes: { ...s.attributes, payload: 'x'.repeat(1200) } }));
}

test('a full filesystem: no partial line, one message when writing fails and one when it works again, failures counted', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('mounting a tmpfs needs root, which CI has');
    t.skip('mounting a tmpfs needs root');
    return;
  }
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  mounted = true;
  // Room to free later.
  const filler = path.join(mnt, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(16 * 1024));

  const file = path.join(mnt, 'traces.jsonl');
  const messages: string[] = [];
  const exporter = new OtlpFileExporter({ path: file, scheduleDelayMs: 60_000, maxBatchSize: 8, onError: (e) => messages.push(e.message) });
  t.after(() => exporter.shutdown(1000));

  let seed = 1;
  while (exporter.stats().failed === 0 && seed < 20) {
    exporter.export(bigSpans(seed++));
    await exporter.flush(5000);
  }
  assert.ok(exporter.stats().failed > 0, 'the filesystem filled up');
  const written = exporter.stats().exported;
  assert.ok(written >= 16, `a few lines were written first (${written} spans)`);
  // Two more batches that fail too: still one message.
  for (let i = 0; i < 2; i++) {
    exporter.export(bigSpans(seed++));
    await exporter.flush(5000);
  }
  assert.equal(exporter.stats().failed, 24, 'three batches of 8 spans failed, and were counted');
  assert.equal(messages.length, 1, `one message for the failure: ${messages.join(' | ')}`);
  assert.match(messages[0]!, /spans not written: cannot append to .*traces\.jsonl: .*ENOSPC/);

  const parse = (): unknown[] => {
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line, i) => {
        const body = JSON.parse(line) as unknown; // throws on a partial line
        assert.deepEqual(otlpJsonViolations(body), [], `line ${i + 1} is OTLP/JSON`);
        return body;
      });
  };
  assert.equal(parse().length, written / 8, 'only the lines written whole are in the file');

  fs.rmSync(filler);
  exporter.export(bigSpans(seed++));
  await exporter.flush(5000);
  assert.equal(exporter.stats().exported, written + 8, 'writing resumed');
  assert.equal(messages.length, 2, messages.join(' | '));
  assert.match(messages[1]!, /writing to .*traces\.jsonl again, after 3 line\(s\) that could not be written/);
  const lines = parse();
  assert.equal(lines.length, written / 8 + 1);
  assert.match(JSON.stringify(lines.at(-1)), new RegExp(`op-${seed - 1}-7`), 'the last line is the batch written after the space was freed');
});
