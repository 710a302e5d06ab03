// `agentrace`, the entry point. The commands that load the probes start the
// kernel's verifier first (a few hundred ms, on the libuv threadpool) and only
// then import the command's modules (the OpenTelemetry exporters: as long
// again), so the two overlap and `run` starts its command that much sooner.
import { Probes } from '@agentrace/bpf';

const argv = process.argv.slice(2);
const probes = loadsProbes(argv) ? Probes.loadAsync() : undefined;
// Its failure (not root, no BTF) is reported where the command awaits it.
probes?.catch(() => {});
const { main } = await import('./commands.js');
process.exitCode = await main(argv, probes);

/** `sidecar` and `run` load the probes, unless asked only for help. */
function loadsProbes(args: readonly string[]): boolean {
  if (args[0] !== 'sidecar' && args[0] !== 'run') return false;
  const end = args.indexOf('--');
  const own = end < 0 ? args : args.slice(0, end);
  return !own.some((a) => a === '-h' || a === '--help' || a === '--version');
}
