// `agentrace probes [status|attach|detach] [group...]`: asks a running
// sidecar, over its control socket, which probe groups are attached, and
// attaches or detaches them without restarting the sidecar or the agents.
import { controlRequest, DEFAULT_CONTROL_SOCKET } from './control-client.js';
import { GroupError, parseGroups, type ControlResponse, type JsonValue } from './control-protocol.js';
import { UsageError } from './usage-error.js';

export const PROBES_USAGE = `status                Show a running sidecar's probe groups, what each signal exported and
                        failed to, its health, and its counters (also: probes status).
  probes [status]       The same.
  probes attach G...    Attach probe groups G (file, net, process, io, or all) in a running
                        sidecar, without restarting it or the agents.
  probes detach G...    Detach them: their programs leave the kernel and cost nothing.`;

export interface ProbesFlags {
  control?: string;
  json?: boolean;
}

/** Where the sidecar's control socket is: --control, $AGENTRACE_CONTROL, or the default. */
export function controlPathFrom(flags: ProbesFlags, env: NodeJS.ProcessEnv = process.env): string {
  return flags.control ?? env.AGENTRACE_CONTROL ?? DEFAULT_CONTROL_SOCKET;
}

export async function probesCommand(args: string[], flags: ProbesFlags): Promise<number> {
  const [sub = 'status', ...names] = args;
  const controlPath = controlPathFrom(flags);
  let res: ControlResponse;
  if (sub === 'status') {
    if (names.length) throw new UsageError(`probes status takes no groups (got ${JSON.stringify(names[0])})`);
    res = await controlRequest(controlPath, { op: 'status' });
  } else if (sub === 'attach' || sub === 'detach') {
    let groups;
    try {
      groups = parseGroups(names);
    } catch (err) {
      if (err instanceof GroupError) throw new UsageError(`probes ${sub}: ${err.message}`);
      throw err;
    }
    res = await controlRequest(controlPath, { op: sub, groups });
  } else {
    throw new UsageError(`unknown probes command ${JSON.stringify(sub)}; use status, attach or detach`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(res)}\n`);
  if (!res.ok) {
    process.stderr.write(`agentrace: the sidecar at ${controlPath} refused: ${res.error ?? 'no reason given'}\n`);
    return 1;
  }
  if (!flags.json) process.stdout.write(renderStatus(controlPath, res));
  return 0;
}

/** The human-readable status: one row per group, then the counters. */
export function renderStatus(controlPath: string, res: ControlResponse): string {
  const lines = [`probe groups of the sidecar at ${controlPath}:`];
  // context last: it is not the user's to switch.
  const rows = Object.entries(res.groups ?? {}).sort(([a], [b]) => Number(a === 'context') - Number(b === 'context'));
  for (const [group, attached] of rows) {
    const note = group === 'context' ? '  (always: thread slots, needed to attribute events to tool calls)' : '';
    lines.push(`  ${group.padEnd(8)} ${attached ? 'attached' : 'detached'}${note}`);
  }
  const { export: exported, health, ...counters } = (res.stats ?? {}) as Record<string, JsonValue>;
  if (exported !== undefined && exported !== null && typeof exported === 'object' && !Array.isArray(exported)) {
    lines.push('export:');
    for (const [signal, raw] of Object.entries(exported)) {
      const c = raw as { exported?: number; failed?: number; dropped?: number };
      const unit = signal === 'metrics' ? ' collections' : '';
      lines.push(`  ${signal.padEnd(8)} ${c.exported ?? 0}${unit} exported, ${c.failed ?? 0} failed, ${c.dropped ?? 0} dropped`);
    }
  }
  if (health !== undefined && health !== null && typeof health === 'object' && !Array.isArray(health)) {
    const h = health as { healthy?: boolean; problems?: string[] };
    lines.push(h.healthy ? 'health: ok' : 'health: UNHEALTHY');
    for (const problem of h.problems ?? []) lines.push(`  ${problem}`);
  }
  if (Object.keys(counters).length > 0) {
    lines.push('counters:');
    const width = Math.max(...Object.keys(counters).map((k) => k.length));
    for (const [section, value] of Object.entries(counters)) lines.push(`  ${section.padEnd(width)}  ${flatten(value as JsonValue)}`);
  }
  return `${lines.join('\n')}\n`;
}

function flatten(value: JsonValue): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return typeof value === 'string' ? value : JSON.stringify(value);
  return Object.entries(value)
    .map(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? `${k} (${flatten(v)})` : `${k} ${flatten(v)}`))
    .join(', ');
}
