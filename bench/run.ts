// The performance suite: runs every benchmark one after another, prints
// each result and a final goals table, and writes them into
// docs/BENCHMARKS.md (between each benchmark's markers; prose outside them
// is kept).
//
//   pnpm bench [--quick] [--only id,id] [--no-write]       (root)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { bpfUnavailableReason } from '@agentrace/bpf';
import type { BenchOptions, BenchResult } from './support/result.js';
import { benchDir, repoRoot } from './support/build.js';
import { goalsTable, replaceSection, section, type GoalRow } from './support/docs.js';

/** The suite, in the order it runs. */
const SUITE = ['host-tax', 'traced-overhead', 'tracked-syscall', 'pipeline', 'sdk', 'sidecar-memory', 'soak', 'agent-loop', 'startup', 'mcp', 'policy'] as const;
const DOC = path.join(repoRoot, 'docs', 'BENCHMARKS.md');
const SIDECAR_CLI = path.join(repoRoot, 'packages', 'sidecar', 'dist', 'cli.js');

const HELP = `Usage: pnpm bench [--quick] [--only id,id] [--no-write]

Runs agentrace's performance suite (bench/<id>.ts) and writes the results
into docs/BENCHMARKS.md. Needs root (BPF) and a built tree (scripts/setup.sh).

Options:
  --quick        fewer rounds: a smoke run (~1-2 min) whose figures are rough
  --only IDS     run only these benchmarks (comma-separated)
  --no-write     print the results, leave docs/BENCHMARKS.md alone
  -h, --help     show this help

Benchmarks, in order: ${SUITE.join(', ')}`;

class UsageError extends Error {}

function parse(): { quick: boolean; only: string[]; write: boolean } | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [...SUITE];
  const unknown = only.filter((id) => !(SUITE as readonly string[]).includes(id));
  if (unknown.length) throw new UsageError(`unknown benchmark ${unknown.join(', ')}; the suite is ${SUITE.join(', ')}`);
  return { quick: values.quick, only, write: !values['no-write'] };
}

/** Why the suite cannot run here, or null. */
function cannotRun(): string | null {
  if (process.getuid?.() !== 0) {
    return 'the suite needs root: it loads BPF programs, switches kernel.bpf_stats_enabled and starts the sidecar; run it as root (e.g. `sudo -E pnpm bench`)';
  }
  const bpf = bpfUnavailableReason();
  if (bpf) return `BPF is not usable here: ${bpf}`;
  if (!fs.existsSync(SIDECAR_CLI)) return `${path.relative(repoRoot, SIDECAR_CLI)} is not built; run scripts/setup.sh (or pnpm -s build) first`;
  return null;
}

function kernel(): string {
  return fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
}

async function runOne(id: string, opts: BenchOptions): Promise<BenchResult | { missing: string } | { error: Error }> {
  const file = path.join(benchDir, `${id}.ts`);
  if (!fs.existsSync(file)) return { missing: `bench/${id}.ts does not exist yet` };
  try {
    const mod = (await import(pathToFileURL(file).href)) as { run?: unknown };
    if (typeof mod.run !== 'function') throw new Error(`bench/${id}.ts does not export run(opts)`);
    const result = (await (mod.run as (o: BenchOptions) => Promise<BenchResult>)(opts)) as BenchResult;
    if (result.id !== id) throw new Error(`bench/${id}.ts returned a result with id ${JSON.stringify(result.id)}`);
    return result;
  } catch (err) {
    return { error: err instanceof Error ? err : new Error(String(err)) };
  }
}

async function main(): Promise<number> {
  let args;
  try {
    args = parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench: ${err.message}\n\n${HELP}`);
    return 2;
  }
  if (!args) return 0;
  const why = cannotRun();
  if (why) {
    console.error(`bench: ${why}`);
    return 1;
  }

  const date = new Date().toISOString().slice(0, 10);
  const command = `pnpm bench${args.quick ? ' --quick' : ''}${args.only.length < SUITE.length ? ` --only ${args.only.join(',')}` : ''}`;
  const cpu = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}`;
  const machine = `${date}, Node ${process.version}, Linux ${kernel()}, ${cpu}`;
  const runTag = `${date}${args.quick ? ' (quick)' : ''}`;
  console.log(`agentrace performance suite: ${machine}; ${command}\n`);

  const opts: BenchOptions = { quick: args.quick };
  const results: BenchResult[] = [];
  const rows: GoalRow[] = [];
  let failed = 0;
  const started = Date.now();
  for (const id of args.only) {
    const t0 = Date.now();
    console.log(`# ${id}: running…`);
    const r = await runOne(id, opts);
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    if ('missing' in r) {
      console.log(`# ${id}: missing (${r.missing})\n`);
      rows.push({ id, status: 'missing', note: r.missing, run: runTag });
    } else if ('error' in r) {
      failed++;
      console.error(`# ${id}: FAILED after ${secs} s: ${r.error.stack ?? r.error.message}\n`);
      rows.push({ id, status: 'failed', note: r.error.message.split('\n')[0]!, run: runTag });
    } else {
      results.push(r);
      console.log(`\n## ${r.title} (${secs} s)\n\n${r.markdown}\n`);
      for (const goal of r.goals) rows.push({ id, goal, status: goal.met ? 'met' : 'not met', run: runTag });
      if (r.goals.length === 0) rows.push({ id, status: 'met', note: 'no goal', run: runTag });
    }
  }
  const took = Math.round((Date.now() - started) / 1000);

  const doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '# Benchmarks\n';
  const goals = goalsTable(rows, section(doc, 'summary'), SUITE);
  console.log(`\n# Goals (${took} s in all)\n\n${goals}\n`);

  if (args.write) {
    let next = doc;
    for (const r of results) {
      next = replaceSection(next, r.id, `_Measured ${machine}; \`${command}\`._\n\n${r.markdown}`);
    }
    const summary = `Last run: ${machine}; \`${command}\`, ${took} s.${args.quick ? ' A --quick run: fewer rounds, rough figures.' : ''}\n\n${goals}`;
    next = replaceSection(next, 'summary', summary);
    fs.writeFileSync(DOC, next);
    console.log(`written to ${path.relative(process.cwd(), DOC) || DOC}`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
