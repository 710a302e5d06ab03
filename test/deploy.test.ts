// The shipped deployments, run for real: the sidecar image built from this
// checkout (deploy/build-image.sh), the manifests in deploy/kubernetes played
// as pods with podman. Each agent is a container of its own, in its own PID
// and mount namespaces, on an image of its own (Node 24, its own node and
// libc files), running a fixture and the SDK from this checkout (mounted
// read-only at the same path) as users write agents: no ready(), fetch's
// pooled client, tools called at once. What the kubelet would do and podman
// does not is done to the manifests by asKubelet (and hostPID by
// PlayedPod.hostPid); the sidecar's export goes to a file instead of a
// collector; the rest (privileges, mounts, env) is as shipped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { ancestry, readOtlpFile, readOtlpLogs, type FlatSpan } from './support/otlp.js';
import {
  AGENT_IMAGE,
  PlayedPod,
  SIDECAR_IMAGE,
  asKubelet,
  buildImages,
  container,
  podOf,
  readManifests,
  repoRoot,
  requirePodman,
  type Manifest,
} from './support/podman.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-deploy-'));
const pods: PlayedPod[] = [];
after(async () => {
  for (const p of pods) await p.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

const fixture = fileURLToPath(new URL('./fixtures/pod-agent.mjs', import.meta.url));
const NAMESPACE = 'agents';
const NODE = 'node-1';
const TOOLS = ['read_file', 'fetch_url', 'run_shell', 'lookup_host', 'read_again'] as const;

interface Plan {
  file: string;
  host: string;
  word: string;
}

/** A data file for one agent, in a host directory its pod mounts at /data. */
function planFor(tag: string, dataDir: string): Plan {
  const word = `w${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(path.join(dataDir, `${tag}.txt`), `${word}\n`);
  return { file: `/data/${tag}.txt`, host: `tools-${tag}.agentrace.test`, word };
}

/** The agent container of a shipped manifest, made to run the fixture with `plan`; its env and mounts stay. */
function runFixture(pod: Manifest, plan: Plan, dataDir: string): void {
  const agent = container(pod, 'agent');
  agent.image = AGENT_IMAGE;
  agent.command = ['node', fixture, JSON.stringify(plan)];
  agent.workingDir = repoRoot;
  agent.volumeMounts = [...(agent.volumeMounts ?? []), { name: 'checkout', mountPath: repoRoot, readOnly: true }, { name: 'data', mountPath: '/data', readOnly: true }];
  pod.spec.volumes = [
    ...(pod.spec.volumes ?? []),
    { name: 'checkout', hostPath: { path: repoRoot, type: 'Directory' } },
    { name: 'data', hostPath: { path: dataDir, type: 'Directory' } },
  ];
  // One run, as a Job's pod would (a Deployment's would restart the agent when it exits).
  pod.spec.restartPolicy = 'Never';
  // Name lookups never leave the pod: the name is in its /etc/hosts.
  pod.spec.hostAliases = [{ ip: '127.0.0.9', hostnames: [plan.host] }];
}

/** The sidecar container, built from this checkout, exporting to a file on the host. */
function exportToFile(pod: Manifest, name: string, outDir: string): string {
  const c = container(pod, name);
  c.image = SIDECAR_IMAGE;
  c.env = (c.env ?? []).filter((e: Manifest) => !e.name.startsWith('OTEL_EXPORTER_OTLP'));
  c.args = ['--otlp-file', '/var/lib/agentrace/out/traces.jsonl'];
  c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'export', mountPath: '/var/lib/agentrace/out' }];
  pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'export', hostPath: { path: outDir, type: 'Directory' } }];
  return path.join(outDir, 'traces.jsonl');
}

function mkdir(name: string): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

interface AgentRun {
  pod: string;
  containerId: string;
  pid: number;
  plan: Plan;
}

async function runAgentIn(played: PlayedPod, plan: Plan): Promise<AgentRun> {
  await played.start('agent');
  const code = await played.wait('agent');
  const logs = await played.logs('agent');
  assert.equal(code, 0, `the agent in ${played.name} ran: ${logs}`);
  const line = logs.split('\n').find((l) => l.startsWith('{"pid"'));
  assert.ok(line, `the agent printed its results: ${logs}`);
  const out = JSON.parse(line) as { pid: number; results: Record<string, string> };
  assert.deepEqual(out.results, { read_file: plan.word, fetch_url: `hello ${plan.word}`, run_shell: plan.word, lookup_host: '127.0.0.9', read_again: plan.word });
  assert.doesNotMatch(logs, /agentrace.*(warning|cannot|no sidecar)/i, 'the SDK did not warn');
  return { pod: played.name, containerId: await played.id('agent'), pid: out.pid, plan };
}

/** Each tool call's open, connect, child process and name lookup are under its span; the agent's identity is on them. */
function assertAttributed(spans: FlatSpan[], run: AgentRun): void {
  const tool = (name: string): FlatSpan => {
    const found = spans.filter((s) => s.name === `execute_tool ${name}` && s.resource['k8s.pod.name'] === run.pod);
    assert.equal(found.length, 1, `one ${name} span from ${run.pod}; spans: ${spans.map((s) => s.name).join(', ')}`);
    return found[0]!;
  };
  const under = (span: FlatSpan | undefined, name: string, what: string): FlatSpan => {
    assert.ok(span, `${run.pod}: ${what} was exported`);
    const chain = ancestry(span, spans).map((s) => s.spanId);
    assert.ok(chain.includes(tool(name).spanId), `${run.pod}: ${what} (${span.name}) is under ${name}`);
    for (const other of TOOLS.filter((t) => t !== name)) assert.ok(!chain.includes(tool(other).spanId), `${run.pod}: ${what} is not under ${other}`);
    return span;
  };
  for (const name of TOOLS) {
    const t = tool(name);
    assert.equal(t.resource['container.id'], run.containerId, `${name}: container.id is the agent container's`);
    assert.equal(t.resource['k8s.namespace.name'], NAMESPACE);
    assert.equal(t.resource['k8s.node.name'], NODE);
    assert.equal(t.attributes['agentrace.attribution.incomplete'], undefined, `${name}: the agent's node was hooked before its first call`);
    // The pid as the sidecar names it: the agent's own in a shared PID namespace, the host's otherwise.
    if (run.pid === 1) assert.notEqual(t.resource['process.pid'], 1, 'process.pid is the node\'s, not the namespace\'s');
    else assert.equal(t.resource['process.pid'], run.pid);
  }
  const opens = spans.filter((s) => s.attributes['file.path'] === run.plan.file && s.resource['k8s.pod.name'] === run.pod);
  under(
    opens.find((s) => s.attributes['agentrace.attribution'] === 'work'),
    'read_file',
    'the open (fs.promises, on the threadpool)',
  );
  // The image's node is a Node 24 (stripped but for what the sidecar reads):
  // once the kernel has proved it can, it reads the running call from the
  // agent's async context, in a container too (the first calls, made before
  // that answer came, are followed by the SDK's hook: slot).
  under(
    opens.find((s) => s.attributes['agentrace.attribution'] === 'frame'),
    'read_again',
    "the later open, its call read from the agent's V8 async context",
  );
  const connect = under(
    spans.find((s) => s.name.startsWith('connect') && s.attributes['network.peer.address'] === '127.0.0.1' && s.resource['k8s.pod.name'] === run.pod),
    'fetch_url',
    'the connect',
  );
  assert.equal(connect.resource['container.id'], run.containerId, 'the kernel span carries the container too');
  under(
    spans.find((s) => {
      const args = s.attributes['process.command_args'];
      return Array.isArray(args) && args.includes(`echo ${run.plan.word}`);
    }),
    'run_shell',
    'the child process',
  );
  const lookup = under(spans.find((s) => s.attributes['dns.question.name'] === run.plan.host), 'lookup_host', 'the name lookup');
  assert.equal(lookup.attributes['agentrace.dns.result'], 'ok');
}

/** The agent's kernel events as log records carry its container and pod, and its tool call's ids. */
function assertLogsIdentify(file: string, spans: FlatSpan[], run: AgentRun): void {
  const logs = readOtlpLogs(file).filter((l) => l.resource['k8s.pod.name'] === run.pod);
  const lookup = logs.find((l) => l.eventName === 'agentrace.dns.lookup' && l.attributes['dns.question.name'] === run.plan.host);
  assert.ok(lookup, `a name lookup log record from ${run.pod}: ${logs.map((l) => l.eventName).join(', ')}`);
  const tool = spans.find((s) => s.name === 'execute_tool lookup_host' && s.resource['k8s.pod.name'] === run.pod)!;
  assert.deepEqual([lookup.traceId, lookup.spanId], [tool.traceId, tool.spanId]);
  assert.equal(lookup.resource['container.id'], run.containerId);
  assert.equal(lookup.resource['k8s.namespace.name'], NAMESPACE);
  assert.equal(lookup.resource['k8s.node.name'], NODE);
}

/** Metric data points of the agent's tools carry its container and pod. */
function assertMetricsIdentify(file: string, run: AgentRun): void {
  const points: Array<Record<string, unknown>> = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"resourceMetrics"')) continue;
    for (const rm of JSON.parse(line).resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          if (m.name !== 'agentrace.tool.syscalls') continue;
          for (const dp of m.sum?.dataPoints ?? []) {
            points.push(Object.fromEntries((dp.attributes ?? []).map((kv: { key: string; value: { stringValue?: string } }) => [kv.key, kv.value.stringValue])));
          }
        }
      }
    }
  }
  const open = points.find((p) => p['gen_ai.tool.name'] === 'read_file' && p['agentrace.syscall'] === 'open' && p['k8s.pod.name'] === run.pod);
  assert.ok(open, `a read_file open count from ${run.pod}: ${JSON.stringify(points.slice(0, 5))}`);
  assert.equal(open['container.id'], run.containerId);
  assert.equal(open['k8s.namespace.name'], NAMESPACE);
  assert.equal(open['k8s.node.name'], NODE);
}

test('pod sidecar (deploy/kubernetes/pod-sidecar.yaml): the image beside the agent in its pod; the agent\'s open, connect, child process and name lookup come out under its tool calls, with its container and pod on spans, metrics and logs', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t) || !requirePodman(t)) return;
  await buildImages();
  const [deployment] = readManifests('deploy/kubernetes/pod-sidecar.yaml');
  const dataDir = mkdir('pod-data');
  const outDir = mkdir('pod-out');
  const plan = planFor('pod', dataDir);
  const { pod, sidecars } = asKubelet(podOf(deployment!, 'my-agent-7d9f', NAMESPACE), NODE);
  assert.deepEqual(sidecars, ['agentrace'], 'agentrace is a native sidecar');
  assert.equal(pod.spec.shareProcessNamespace, true);
  runFixture(pod, plan, dataDir);
  const file = exportToFile(pod, 'agentrace', outDir);

  const played = await PlayedPod.create(dir, pod);
  pods.push(played);
  await played.startReady(pod, 'agentrace');
  const run = await runAgentIn(played, plan);
  assert.notEqual(run.pid, 1, 'the agent shares the pod\'s PID namespace (pid 1 is the pod\'s init)');
  await played.stop('agentrace');
  const sidecarLog = await played.logs('agentrace');
  assert.match(sidecarLog, /probes attached/, sidecarLog);
  assert.doesNotMatch(sidecarLog, /cannot hook|\b[1-9]\d* (?:connections )?refused|unseen/i, 'the sidecar hooked the agent\'s binaries and refused nobody');

  const spans = readOtlpFile(file);
  assertAttributed(spans, run);
  assertMetricsIdentify(file, run);
  assertLogsIdentify(file, spans, run);
  await played.remove();
});

test('node daemon (deploy/kubernetes/node-daemon.yaml): one daemon for two agent pods, each in its own PID namespace; each agent\'s calls are its own, with its container and pod', { timeout: 300_000 }, async (t) => {
  if (!requireBpf(t) || !requirePodman(t)) return;
  await buildImages();
  const manifests = readManifests('deploy/kubernetes/node-daemon.yaml');
  const daemonSet = manifests.find((m) => m.kind === 'DaemonSet')!;
  assert.ok(daemonSet, 'node-daemon.yaml has a DaemonSet');
  assert.equal(daemonSet.spec.template.spec.hostPID, true);
  // The node's /run/agentrace is this test's own directory.
  const socketDir = mkdir('node-run');
  const hostSocket = (pod: Manifest): void => {
    const v = pod.spec.volumes.find((x: Manifest) => x.name === 'agentrace-socket');
    assert.equal(v.hostPath.path, '/run/agentrace');
    v.hostPath.path = socketDir;
  };
  const outDir = mkdir('node-out');
  const { pod: daemonPod } = asKubelet(podOf(daemonSet, 'agentrace-x2k4', 'agentrace'), NODE);
  hostSocket(daemonPod);
  const file = exportToFile(daemonPod, 'agentrace', outDir);
  const daemon = await PlayedPod.hostPid(daemonPod);
  pods.push(daemon);
  await daemon.startReady(daemonPod, 'agentrace');

  const [agentDeployment] = readManifests('deploy/kubernetes/node-daemon-agent.yaml');
  const dataDir = mkdir('node-data');
  const played: Array<[PlayedPod, Plan]> = [];
  for (const name of ['my-agent-a1b2', 'my-agent-c3d4']) {
    const { pod } = asKubelet(podOf(agentDeployment!, name, NAMESPACE), NODE);
    hostSocket(pod);
    const plan = planFor(name, dataDir);
    runFixture(pod, plan, dataDir);
    const p = await PlayedPod.create(dir, pod);
    pods.push(p);
    played.push([p, plan]);
  }
  // Both at once: the same pids in two namespaces.
  const runs = await Promise.all(played.map(([p, plan]) => runAgentIn(p, plan)));
  for (const r of runs) assert.equal(r.pid, 1, `${r.pod}'s agent is pid 1 of its own PID namespace`);
  assert.notEqual(runs[0]!.containerId, runs[1]!.containerId);
  await daemon.stop('agentrace');
  const log = await daemon.logs('agentrace');
  // (the shutdown line may count "0 refused": only a count above zero is a refusal)
  assert.doesNotMatch(log, /cannot hook|\b[1-9]\d* (?:connections )?refused|unseen/i, log);

  const spans = readOtlpFile(file);
  for (const r of runs) {
    assertAttributed(spans, r);
    assertMetricsIdentify(file, r);
    assertLogsIdentify(file, spans, r);
  }
  for (const p of [daemon, ...played.map(([p]) => p)]) await p.remove();
});
