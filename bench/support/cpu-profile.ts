// Reads a V8 CPU profile (.cpuprofile) and says where the time went:
// self time per function, the largest first.
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface CpuProfileSummary {
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  /** Functions by self time, largest first. */
  top: Array<{ name: string; ms: number }>;
  /** The same by module (file, or package under node_modules), largest first. */
  modules: Array<{ name: string; ms: number }>;
}

function moduleOf(frame: ProfileNode['callFrame']): string {
  if (!frame.url) return frame.functionName || '(native)'; // (garbage collector), (program), native code
  const file = frame.url.replace(/^file:\/\//, '');
  const pkg = file.match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/)?.[1];
  if (pkg) return pkg;
  const own = file.match(/packages\/([^/]+)\/(?:dist|src)\/(.*)$/);
  return own ? `${own[1]}/${own[2]}` : file.startsWith('node:') ? file : path.basename(file);
}

function label(frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  return frame.url ? `${name} (${moduleOf(frame)}:${frame.lineNumber + 1})` : name;
}

function largest(totals: Map<string, number>, top: number): Array<{ name: string; ms: number }> {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000 }));
}

/** Summarises a .cpuprofile file. */
export function summarizeCpuProfile(file: string, top = 8): CpuProfileSummary {
  if (!fs.existsSync(file)) throw new Error(`no CPU profile was written to ${file}`);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  // Native functions (the addon's, Node's own bindings) have no file, and V8
  // may show them under another native function's name: charge them to the
  // JS function that called them, marked as native. V8's own entries
  // ("(garbage collector)", "(program)") stay as they are.
  const frameOf = (node: ProfileNode): ProfileNode['callFrame'] => {
    const f = node.callFrame;
    if (f.url || f.functionName.startsWith('(')) return f;
    const caller = parent.get(node.id);
    if (!caller || caller.callFrame.functionName === '(root)') return { ...f, functionName: '(native)' };
    const c = frameOf(caller);
    return { ...c, functionName: `${c.functionName.replace(/ → native$/, '') || '(anonymous)'} → native` };
  };
  const selfUs = new Map<string, number>();
  const moduleUs = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') return;
    const dt = profile.timeDeltas[i] ?? 0;
    const frame = frameOf(node);
    const mod = moduleOf(frame);
    // The profiler's own session (its start and stop calls), not the profiled code.
    if (mod === 'node:inspector') return;
    const fn = label(frame);
    selfUs.set(fn, (selfUs.get(fn) ?? 0) + dt);
    moduleUs.set(mod, (moduleUs.get(mod) ?? 0) + dt);
  });
  const busyUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  return { busyMs: busyUs / 1000, top: largest(selfUs, top), modules: largest(moduleUs, top) };
}
