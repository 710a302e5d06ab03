// Writes results into docs/BENCHMARKS.md: each benchmark's generated part
// sits between `<!-- bench:ID -->` and `<!-- /bench:ID -->`; everything
// outside the markers is hand-written and kept. A missing section is appended.
import type { Goal } from './result.js';
import { table } from './markdown.js';

const open = (id: string): string => `<!-- bench:${id} -->`;
const close = (id: string): string => `<!-- /bench:${id} -->`;

/** The text between the markers of `id`, or undefined. */
export function section(doc: string, id: string): string | undefined {
  const start = doc.indexOf(open(id));
  const end = doc.indexOf(close(id));
  if (start < 0 || end < start) return undefined;
  return doc.slice(start + open(id).length, end).replace(/^\n/, '').replace(/\n$/, '');
}

export function replaceSection(doc: string, id: string, body: string): string {
  const block = `${open(id)}\n${body.trimEnd()}\n${close(id)}`;
  const start = doc.indexOf(open(id));
  const end = doc.indexOf(close(id));
  if (start >= 0 && end > start) return doc.slice(0, start) + block + doc.slice(end + close(id).length);
  if (start >= 0 || end >= 0) throw new Error(`docs/BENCHMARKS.md has a broken ${open(id)} … ${close(id)} pair; fix the markers by hand`);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

export interface GoalRow {
  id: string;
  /** Goal, or why there is none (missing, failed). */
  goal?: Goal;
  status: 'met' | 'not met' | 'missing' | 'failed';
  note?: string;
  run: string;
}

const ROW_ID = /^\| `([^`]+)` \|/;

/** The goals table: this run's rows, then rows of benchmarks not run this time kept from `previous`, in `order`. */
export function goalsTable(rows: readonly GoalRow[], previous: string | undefined, order: readonly string[]): string {
  const ran = new Set(rows.map((r) => r.id));
  const lines = new Map<string, string[]>();
  const fresh = table(
    ['benchmark', 'what', 'goal', 'measured', 'met', 'run'],
    rows.map((r) => [
      `\`${r.id}\``,
      r.goal?.name ?? '',
      r.goal?.goal ?? '',
      r.goal?.measured ?? r.note ?? '',
      r.status === 'met' ? 'yes' : r.status === 'not met' ? '**no**' : r.status,
      r.run,
    ]),
  ).split('\n');
  const [header, rule, ...body] = fresh;
  for (const line of body) push(lines, line.match(ROW_ID)![1]!, line);
  for (const line of (previous ?? '').split('\n')) {
    const id = line.match(ROW_ID)?.[1];
    if (id && !ran.has(id)) push(lines, id, line);
  }
  const ids = [...order.filter((id) => lines.has(id)), ...[...lines.keys()].filter((id) => !order.includes(id))];
  return [header!, rule!, ...ids.flatMap((id) => lines.get(id)!)].join('\n');
}

function push(into: Map<string, string[]>, id: string, line: string): void {
  const list = into.get(id);
  if (list) list.push(line);
  else into.set(id, [line]);
}
