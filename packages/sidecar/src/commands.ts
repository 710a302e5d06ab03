// `agentrace`'s commands (cli.ts is the entry point). `sidecar` runs the
// daemon; `run` runs a command under an embedded sidecar and prints what its
// tool calls did.
import { parseArgs } from 'node:util';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveOtlpConfig, createExporters, resolveOtlpMetricsConfig, resolveOtlpLogsConfig, createLogExporters } from './otlp/index.js';
import { DEFAULT_MAX_EVENTS_PER_SPAN, type Probes } from '@agentrace/bpf';
import { Sidecar, SIDECAR_VERSION } from './sidecar.js';
import { renderTree } from './tree.js';
import type { ExportSpan } from './otlp/span.js';
import type { SpanExporter } from './otlp/exporter.js';
import { UsageError } from './usage-error.js';
import { PolicyError, readPolicy } from './policy/policy-file.js';
import { compilePolicy, type CompiledPolicy } from './policy/compile.js';
import { GroupError, parseProbesOption, switchableGroups, type SwitchableGroup } from './control-protocol.js';
import { controlPathFrom, probesCommand, PROBES_USAGE } from './probes-command.js';
import { controlRequest } from './control-client.js';
import { binariesOf, resolveCommand, startGated } from './launch.js';
import { attributeLimitsFromEnv } from './attributes.js';
import { heldBytes, limitsHelp, resolveLimits } from './limits.js';
import { limitedLog } from './limited-log.js';
import type { ToolSpanLimits } from './tool-spans.js';
import type { SocketLimits } from './socket-server.js';
import { asError, messageOf } from '@agentrace/protocol';

const DEFAULT_SOCKET = '/run/agentrace/agentrace.sock';
const DEFAULT_DAEMON_FILE = '/var/lib/agentrace/traces.jsonl';

const HELP = `Usage: agentrace <command> [options]

Commands:
  sidecar               Attach the probes and serve agents on a Unix socket until SIGINT/SIGTERM.
  run [options] -- CMD  Run CMD with an embedded sidecar, then print its tool calls and
                        what each did in the kernel; exits with CMD's exit code.
  ${PROBES_USAGE}
  policy reload         Read a running sidecar's --policy file again and put it in force for the
                        next decision, agents untouched; a bad file is refused with its line and
                        the running policy stays (exit 1).

Options:
  --socket PATH         Unix socket agents connect to. sidecar: $AGENTRACE_SOCKET or
                        ${DEFAULT_SOCKET}; run: a new socket in a temporary directory.
  --otlp-file PATH      Write spans as OTLP JSON lines (the OpenTelemetry file exporter format).
                        Default when no endpoint is set: ${DEFAULT_DAEMON_FILE} (sidecar),
                        ./agentrace-<time>.otlp.jsonl (run).
  --otlp-endpoint URL   Export OTLP to a collector at URL (its base URL or traces endpoint;
                        grpc: http://host:4317). Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
                        OTEL_EXPORTER_OTLP_ENDPOINT. Headers, timeout and gzip:
                        OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]{HEADERS,TIMEOUT,COMPRESSION}.
  --otlp-protocol P     http/protobuf, http/json or grpc. Default: OTEL_EXPORTER_OTLP_PROTOCOL or
                        http/protobuf.
                        Metrics (per-tool syscall counts, latency histograms, I/O bytes, lost
                        events) go to the same file and to /v1/metrics, every
                        OTEL_METRIC_EXPORT_INTERVAL ms (default 60000) and at exit;
                        OTEL_METRICS_EXPORTER=none turns them off.
  --metrics-port [HOST:]PORT
                        sidecar, run: serve Prometheus /metrics, /healthz (probes attached and
                        every exporter working) and /readyz (serving agents) on HOST:PORT
                        (HOST default: OTEL_EXPORTER_PROMETHEUS_HOST or localhost). Also on
                        when OTEL_METRICS_EXPORTER lists prometheus (OTEL_EXPORTER_PROMETHEUS_PORT,
                        default 9464); OTEL_METRICS_EXPORTER=prometheus alone turns OTLP metrics off.
  --logs otlp|none      Kernel events (exec, connect, name lookup, first open, loss) as OTLP log
                        records, with event.name and their tool call's trace and span ids: to
                        the same file and to /v1/logs (OTEL_EXPORTER_OTLP_LOGS_*). Default:
                        OTEL_LOGS_EXPORTER (none turns them off), else otlp.
                        What agents send is held to OpenTelemetry's span limits:
                        OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT (or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
                        default 4096 characters) and OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT (or
                        OTEL_ATTRIBUTE_COUNT_LIMIT, default 128); what they cut is counted.
  --limit NAME=N        sidecar, run: bound what agents can make the sidecar hold (repeatable;
                        see Limits below).
  --quiet               run: do not print the tree.
  --max-events-per-span N
                        Events (opens, connects, DNS) one tool call may emit before the rest
                        are only counted (in its kernel summary); 0: no cap. Reads, writes,
                        sends and receives are always summarised in the kernel, never one
                        event each. Default: $AGENTRACE_MAX_EVENTS_PER_SPAN or ${DEFAULT_MAX_EVENTS_PER_SPAN}.
  --probes LIST         sidecar, run: probe groups attached at start, comma-separated from
                        ${switchableGroups.join(', ')}; or all (default) or none. The context group
                        (thread slots) is always attached: attribution needs it.
  --policy FILE         sidecar, run: enforce a per-tool policy (docs/POLICY.md) in the kernel, for
                        the exact call: where each tool's calls may connect and send UDP (address
                        blocks, or host names its own lookups resolved; denied with EPERM, or
                        recorded in audit mode), what their child processes may execute, and where
                        they may open and write files (a child killed before it runs or writes, or
                        recorded). Tools by name or pattern.
                        SIGHUP (sidecar) or \`agentrace policy reload\` reads it again.
  --control PATH        Control socket (root only) that \`agentrace probes\` talks to.
                        sidecar: $AGENTRACE_CONTROL or control.sock beside --socket
                        (/run/agentrace/control.sock); run: one in its temporary directory,
                        given to CMD as $AGENTRACE_CONTROL; probes: $AGENTRACE_CONTROL or
                        /run/agentrace/control.sock.
  --json                probes: print the sidecar's answer as JSON.
  -h, --help            Show this help.
  --version             Show the version.

Limits (--limit NAME=N, or AGENTRACE_LIMITS="NAME=N,..."; N may end in Ki, Mi or Gi). A client
over one is refused or cut, told why, and counted; nobody else notices. Defaults:
${limitsHelp('  ')}

Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.
Example: agentrace run -- node my-agent.js`;


interface Flags {
  socket?: string;
  'otlp-file'?: string;
  'otlp-endpoint'?: string;
  'otlp-protocol'?: string;
  'metrics-port'?: string;
  logs?: string;
  quiet?: boolean;
  'max-events-per-span'?: string;
  limit?: string[];
  probes?: string;
  policy?: string;
  control?: string;
  json?: boolean;
  help?: boolean;
  version?: boolean;
}

function parse(argv: string[]): { command?: string; flags: Flags; rest: string[]; args: string[] } {
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const rest = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        'otlp-file': { type: 'string' },
        'metrics-port': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'otlp-protocol': { type: 'string' },
        logs: { type: 'string' },
        quiet: { type: 'boolean' },
        'max-events-per-span': { type: 'string' },
        limit: { type: 'string', multiple: true },
        probes: { type: 'string' },
        policy: { type: 'string' },
        control: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError(messageOf(err));
  }
  const [command, ...extra] = parsed.positionals;
  if (extra.length && command !== 'probes' && command !== 'policy') throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}; put the command after --`);
  return { command, flags: parsed.values as Flags, rest, args: extra };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
}

function exportersFor(flags: Flags, defaultFile: string) {
  const otlpFlags = { endpoint: flags['otlp-endpoint'], protocol: flags['otlp-protocol'], file: flags['otlp-file'] };
  try {
    const config = resolveOtlpConfig(otlpFlags, process.env, { defaultFile });
    const metrics = resolveOtlpMetricsConfig({ ...otlpFlags, metricsPort: flags['metrics-port'] }, process.env, config);
    const logs = resolveOtlpLogsConfig({ ...otlpFlags, ...(flags.logs !== undefined ? { logs: flags.logs } : {}) }, process.env, config);
    const onError = exportErrorLog();
    printDiagnostics(onError);
    return { exporters: createExporters(config, { onError }), metrics, logExporters: createLogExporters(logs, { onError }) };
  } catch (err) {
    throw new UsageError(messageOf(err));
  }
}

/** Export failures printed a few times, then only counted (the shutdown line has the totals). */
const EXPORT_ERRORS_LOGGED = 10;

function exportErrorLog(): (err: Error) => void {
  const log = limitedLog(EXPORT_ERRORS_LOGGED, (line) => process.stderr.write(`agentrace: export: ${line}\n`), 'further export errors');
  return (err) => log(err.message);
}

/**
 * The official OTLP exporters speak through OpenTelemetry's diag logger (a
 * collector's partial success, a response that does not decode): printed, and
 * limited, like export errors.
 */
function printDiagnostics(onError: (err: Error) => void): void {
  const say = (message: string, ...args: unknown[]): void => {
    const detail = args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a))).join(' ');
    onError(new Error(`OpenTelemetry: ${message}${detail ? ` ${detail}` : ''}`));
  };
  const quiet = (): void => {};
  diag.setLogger({ error: say, warn: say, info: quiet, debug: quiet, verbose: quiet }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

function maxEventsPerSpan(flags: Flags): number | undefined {
  const [raw, source] =
    flags['max-events-per-span'] !== undefined
      ? [flags['max-events-per-span'], '--max-events-per-span']
      : [process.env.AGENTRACE_MAX_EVENTS_PER_SPAN, 'AGENTRACE_MAX_EVENTS_PER_SPAN'];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n > 0xffffffff) {
    throw new UsageError(`${source} must be a whole number of events (0 for no cap), got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The span and socket limits: OTel's attribute limits from the environment, the rest from --limit and AGENTRACE_LIMITS. */
function limitsFor(flags: Flags, exporters = 1): { spanLimits: Partial<ToolSpanLimits>; socketLimits: SocketLimits; held: number } {
  try {
    const limits = resolveLimits(flags.limit ?? [], process.env);
    return { spanLimits: { ...limits.spans, attributes: attributeLimitsFromEnv(process.env) }, socketLimits: limits.socket, held: heldBytes(limits, exporters).total };
  } catch (err) {
    throw new UsageError(messageOf(err));
  }
}

/** The --policy file, compiled for the kernel; a mistake in it is a usage error naming its line. */
function policyFor(flags: Flags): CompiledPolicy | undefined {
  if (flags.policy === undefined) return undefined;
  try {
    return compilePolicy(readPolicy(flags.policy));
  } catch (err) {
    if (err instanceof PolicyError) throw new UsageError(`--policy: ${err.message}`);
    throw err;
  }
}

/** `agentrace policy reload`: the running sidecar reads its policy file again. */
async function policyCommand(args: string[], flags: Flags): Promise<number> {
  const [sub, ...extra] = args;
  if (sub !== 'reload') throw new UsageError(sub === undefined ? 'policy needs a command: reload' : `unknown policy command ${JSON.stringify(sub)}; use reload`);
  if (extra.length) throw new UsageError(`policy reload takes no arguments (got ${JSON.stringify(extra[0])}); it reads the file the sidecar was started with`);
  const controlPath = controlPathFrom(flags);
  const res = await controlRequest(controlPath, { op: 'policy-reload' });
  if (flags.json) process.stdout.write(`${JSON.stringify(res)}\n`);
  if (!res.ok) {
    process.stderr.write(`agentrace: the sidecar at ${controlPath} refused: ${res.error ?? 'no reason given'}\n`);
    return 1;
  }
  if (!flags.json) process.stdout.write(`policy reloaded from ${res.policy?.file ?? '?'} (${res.policy?.rules ?? 0} rules), in force for the next decision\n`);
  return 0;
}

function startGroups(flags: Flags): SwitchableGroup[] | undefined {
  return flags.probes === undefined ? undefined : parseProbesOption(flags.probes);
}

async function runSidecar(flags: Flags, preloaded: Preloaded): Promise<number> {
  const socketPath = flags.socket ?? process.env.AGENTRACE_SOCKET ?? DEFAULT_SOCKET;
  const controlSocketPath = flags.control ?? process.env.AGENTRACE_CONTROL ?? path.join(path.dirname(socketPath), 'control.sock');
  const probeGroups = startGroups(flags);
  const { exporters, metrics, logExporters } = exportersFor(flags, DEFAULT_DAEMON_FILE);
  const { spanLimits, socketLimits, held } = limitsFor(flags, exporters.length);
  const policy = policyFor(flags);
  const sidecar = await Sidecar.start({ ...preloaded.take(), socketPath, exporters, logExporters, metrics, maxEventsPerSpan: maxEventsPerSpan(flags), controlSocketPath, probeGroups, spanLimits, socketLimits, ...(policy ? { policy, policyFile: flags.policy } : {}) });
  // SIGHUP reads the policy file again (as `agentrace policy reload` does)
  const reload = (): void => {
    try {
      sidecar.reloadPolicy();
    } catch (err) {
      process.stderr.write(`agentrace sidecar: SIGHUP: policy reload refused, the running policy stays: ${messageOf(err)}\n`);
    }
  };
  process.on('SIGHUP', reload);
  process.stderr.write(
    `agentrace sidecar ${SIDECAR_VERSION}: probes attached; listening on ${socketPath}; control on ${controlSocketPath} (probe groups ${['context', ...(probeGroups ?? switchableGroups)].join(', ')}); exporting to ${exporters.map((e) => e.description).join(', ')}; ` +
      (sidecar.statusUrl ? `serving /metrics, /healthz and /readyz on ${sidecar.statusUrl}; ` : '') +
      `agents can make it hold ${Math.ceil(held / 1024 ** 2)} MB at most (--limit)\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.off('SIGHUP', reload);
  process.stderr.write(`agentrace sidecar: ${signal}: flushing\n`);
  // What agents that just exited wrote is still in their sockets: read it.
  await sidecar.settle(1000);
  await sidecar.stop();
  return 0;
}

async function runCommand(flags: Flags, command: string[], preloaded: Preloaded): Promise<number> {
  if (command.length === 0) throw new UsageError('run needs a command after --, e.g. agentrace run -- node agent.js');
  const probeGroups = startGroups(flags);
  const tmp = flags.socket && flags.control ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-'));
  const socketPath = flags.socket ?? path.join(tmp!, 'agentrace.sock');
  const controlSocketPath = flags.control ?? path.join(tmp!, 'control.sock');
  const defaultFile = path.resolve(`agentrace-${timestamp()}.otlp.jsonl`);
  const { exporters, metrics, logExporters } = exportersFor(flags, defaultFile);
  const maxEvents = maxEventsPerSpan(flags);
  const { spanLimits, socketLimits } = limitsFor(flags);
  const spans: ExportSpan[] = [];
  const toolNames = new Map<string, string>();
  const policy = policyFor(flags);
  const sidecar = await Sidecar.start({
    ...preloaded.take(),
    ...(policy ? { policy, policyFile: flags.policy } : {}),
    socketPath,
    controlSocketPath,
    probeGroups,
    exporters,
    logExporters,
    metrics,
    maxEventsPerSpan: maxEvents,
    spanLimits,
    socketLimits,
    onSpans: (batch) => spans.push(...batch),
    onToolStart: (spanId, name) => toolNames.set(spanId, name),
    detachInBackground: true,
  });

  let code: number | null = null;
  let signal: NodeJS.Signals | null = null;
  let spawnError: Error | undefined;
  const env = { ...process.env, AGENTRACE_SOCKET: socketPath, AGENTRACE_CONTROL: controlSocketPath };
  try {
    const file = resolveCommand(command[0]!, env);
    if (file === undefined) {
      const code = command[0]!.includes('/') && fs.existsSync(command[0]!) ? 'EACCES' : 'ENOENT';
      spawnError = Object.assign(new Error(`spawn ${command[0]} ${code}`), { code });
    } else {
      // Tracked before it runs anything of its own, so a tool called at
      // once is attributed from its first syscall.
      const gated = startGated(command, env);
      const child = gated.child;
      const forward = (sig: NodeJS.Signals): void => {
        child.kill(sig);
      };
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      try {
        const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (c, s) => resolve([c, s]));
        });
        try {
          if (child.pid !== undefined) sidecar.trackLaunched(child.pid, binariesOf(file, env));
        } catch (err) {
          process.stderr.write(`agentrace: cannot trace ${command[0]} from its start (${messageOf(err)}); it is traced once its SDK says hello\n`);
        }
        gated.release();
        [code, signal] = await exited;
      } catch (err) {
        spawnError = asError(err);
      } finally {
        process.off('SIGINT', forward);
        process.off('SIGTERM', forward);
      }
    }
    // The agent's last frames and the kernel's last events are still in flight.
    await sidecar.settle(1000);
  } finally {
    await sidecar.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (spawnError) {
    process.stderr.write(`agentrace: cannot run ${command[0]}: ${spawnError.message}\n`);
    // As a shell does: 127 for a command not found, 126 for one that cannot run.
    return (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
  }

  if (!flags.quiet) {
    process.stderr.write(`\n${spans.length ? renderTree(spans, toolNames) : 'no tool calls were traced (does the command use @agentrace/sdk?)'}\n`);
  }
  for (const e of exporters) process.stderr.write(`agentrace: ${exportOutcome(e)}\n`);
  return signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1);
}

/** What became of the spans, as the exporter counted them: never "written" for what was not. */
function exportOutcome(e: SpanExporter): string {
  const { exported, failed, dropped } = e.stats();
  const plural = (n: number): string => `${n} span${n === 1 ? '' : 's'}`;
  const written = `${plural(exported)} written to ${e.description}`;
  if (failed + dropped === 0) return written;
  return `${written}; ${plural(failed + dropped)} NOT written (${failed} failed, ${dropped} dropped: queue full or shut down)`;
}

/**
 * Probes the entry point started loading before this module was imported:
 * the sidecar started by the command takes them; otherwise (help, a usage
 * error) they are closed.
 */
class Preloaded {
  constructor(private probes: Promise<Probes> | undefined) {}

  /** For SidecarOptions: `{ probes }` once, then nothing. */
  take(): { probes?: Promise<Probes> } {
    const probes = this.probes;
    this.probes = undefined;
    return probes ? { probes } : {};
  }

  discard(): void {
    void this.probes?.then(
      (p) => p.close(),
      () => {},
    );
    this.probes = undefined;
  }
}

export async function main(argv: string[], probes?: Promise<Probes>): Promise<number> {
  const preloaded = new Preloaded(probes);
  try {
    return await command(argv, preloaded);
  } finally {
    preloaded.discard();
  }
}

async function command(argv: string[], preloaded: Preloaded): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
    if (parsed.flags.version) {
      process.stdout.write(`agentrace ${SIDECAR_VERSION}\n`);
      return 0;
    }
    if (parsed.flags.help || !parsed.command) {
      process.stdout.write(`${HELP}\n`);
      return parsed.command || parsed.flags.help ? 0 : 2;
    }
    if (parsed.command === 'sidecar') return await runSidecar(parsed.flags, preloaded);
    if (parsed.command === 'run') return await runCommand(parsed.flags, parsed.rest, preloaded);
    if (parsed.command === 'probes') return await probesCommand(parsed.args, parsed.flags);
    if (parsed.command === 'policy') return await policyCommand(parsed.args, parsed.flags);
    if (parsed.command === 'status') return await probesCommand(['status', ...parsed.args], parsed.flags);
    throw new UsageError(`unknown command ${JSON.stringify(parsed.command)}`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof GroupError) {
      process.stderr.write(`agentrace: ${err.message}\nRun agentrace --help for usage.\n`);
      return 2;
    }
    process.stderr.write(`agentrace: ${messageOf(err)}\n`);
    return 1;
  }
}

