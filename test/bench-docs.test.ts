// How `pnpm bench` writes docs/BENCHMARKS.md: generated text only between a
// benchmark's markers, hand-written prose kept, the goals table merged
// across partial runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goalsTable, replaceSection, section } from '../bench/support/docs.js';

const doc = ['# Benchmarks', '', 'prose before', '', '<!-- bench:a -->', 'old a', '<!-- /bench:a -->', '', 'prose after', ''].join('\n');

test('a section is replaced between its markers; the prose around it is kept', () => {
  const next = replaceSection(doc, 'a', 'new a\n| t |');
  assert.equal(section(next, 'a'), 'new a\n| t |');
  assert.ok(next.startsWith('# Benchmarks\n\nprose before\n\n<!-- bench:a -->\nnew a'));
  assert.ok(next.endsWith('<!-- /bench:a -->\n\nprose after\n'));
  assert.equal(replaceSection(next, 'a', 'new a\n| t |'), next, 'writing the same text twice changes nothing');
});

test('a missing section is appended with its markers', () => {
  const next = replaceSection(doc, 'b', 'b body');
  assert.equal(section(next, 'a'), 'old a');
  assert.equal(section(next, 'b'), 'b body');
  assert.ok(next.endsWith('prose after\n\n<!-- bench:b -->\nb body\n<!-- /bench:b -->\n'));
});

test('a broken marker pair is an error, not a second copy', () => {
  assert.throws(() => replaceSection('x\n<!-- bench:a -->\nno end\n', 'a', 'y'), /broken <!-- bench:a -->/);
});

test('the goals table keeps the rows of benchmarks not run this time, in suite order', () => {
  const goal = (name: string, met: boolean) => ({ name, goal: 'g', measured: 'm', met });
  const first = goalsTable(
    [
      { id: 'a', goal: goal('a1', true), status: 'met', run: 'day 1' },
      { id: 'b', goal: goal('b1', false), status: 'not met', run: 'day 1' },
      { id: 'c', status: 'missing', note: 'bench/c.ts does not exist yet', run: 'day 1' },
    ],
    undefined,
    ['a', 'b', 'c'],
  );
  const second = goalsTable([{ id: 'b', goal: goal('b2', true), status: 'met', run: 'day 2' }], first, ['a', 'b', 'c']);
  const rows = second.split('\n').slice(2);
  assert.deepEqual(
    rows.map((r) => r.split(' | ').slice(0, 2).join(' | ')),
    ['| `a` | a1', '| `b` | b2', '| `c` | '],
  );
  assert.match(rows[1]!, /\| yes \| day 2 \|$/);
  assert.match(rows[2]!, /bench\/c\.ts does not exist yet \| missing \| day 1 \|$/);
});
