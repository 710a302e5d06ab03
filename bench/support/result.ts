// The contract between bench/run.ts and every benchmark module bench/<id>.ts,
// which exports `run(opts: BenchOptions): Promise<BenchResult>`.

export interface BenchOptions {
  /** Fewer rounds, for a smoke run. */
  quick: boolean;
}

export interface Goal {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface BenchResult {
  id: string;
  title: string;
  /** Tables plus one line on how to reproduce; written into docs/BENCHMARKS.md as is. */
  markdown: string;
  goals: Goal[];
}

export type Benchmark = (opts: BenchOptions) => Promise<BenchResult>;
