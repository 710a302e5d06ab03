// The sidecar as Prometheus and Kubernetes see it: a real Prometheus (Debian's
// `prometheus` package) scrapes `agentrace sidecar --metrics-port` on loopback
// while the example agent calls its tools, and the test asks Prometheus' HTTP
// API for agentrace_tool_syscalls of one of them. Then /healthz and /readyz
// against a collector that refuses, then works.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { freePort } from './support/free-port.js';
import { startCollector } from './otlp-schema.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const agent = path.join(root, 'examples/agent/agent.mjs');
const PROMETHEUS = '/usr/bin/prometheus';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-prometheus-'));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function requirePrometheus(t: { skip: (why: string) => void }): boolean {
  if (fs.existsSync(PROMETHEUS)) return true;
  const why = `${PROMETHEUS} is missing: scripts/setup.sh installs Debian's prometheus package`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

/** `agentrace sidecar` with these flags; resolves with the status URL from its start line. */
async function startSidecar(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ socket: string; url: string; stderr: () => string; child: ChildProcess }> {
  const socket = path.join(dir, `${name}.sock`);
  const child = spawn(bin, ['sidecar', '--socket', socket, '--otlp-file', path.join(dir, `${name}.jsonl`), '--metrics-port', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!/serving \/metrics, \/healthz and \/readyz on (http:\/\/\S+);/.test(stderr)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `the sidecar did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /serving \/metrics, \/healthz and \/readyz on (http:\/\/\S+);/.exec(stderr)![1]!;
  return { socket, url, stderr: () => stderr, child };
}

async function runAgent(socket: string, serviceName = 'weather-agent'): Promise<void> {
  const child = spawn(process.execPath, [agent], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, AGENTRACE_SOCKET: socket, OTEL_SERVICE_NAME: serviceName },
  });
  children.push(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, 'the example agent ran');
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

test('a real Prometheus scrapes /metrics: agentrace_tool_syscalls of the tool two agents ran, one series per agent; OTLP metrics under each agent\'s resource', async (t) => {
  if (!requireBpf(t) || !requirePrometheus(t)) return;
  const sidecar = await startSidecar('scraped', []);
  t.after(() => stop(sidecar.child));
  await runAgent(sidecar.socket, 'agent-one');
  await runAgent(sidecar.socket, 'agent-two');

  // a tool's aggregates are recorded once its kernel summary is taken, shortly after it ends
  const execLine = (body: string): string | undefined =>
    body.split('\n').find((l) => l.startsWith('agentrace_tool_syscalls_total{') && l.includes('gen_ai_tool_name="run_shell"') && l.includes('agentrace_syscall="exec"') && l.includes('service_name="agent-two"'));
  let own = await get(`${sidecar.url}/metrics`);
  for (const until = Date.now() + 10_000; execLine(own.body) === undefined && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 100));
    own = await get(`${sidecar.url}/metrics`);
  }
  assert.equal(own.status, 200);
  const line = execLine(own.body);
  assert.ok(line, `run_shell's execs in /metrics:\n${own.body.slice(0, 2000)}`);
  const served = Number(line.split(' ').pop());
  assert.ok(served >= 1, line);

  const promPort = await freePort();
  const target = new URL(sidecar.url).host;
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: agentrace\n    static_configs:\n      - targets: ['${target}']\n`);
  const prometheus = spawn(
    PROMETHEUS,
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(prometheus);
  let promLog = '';
  prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  t.after(() => stop(prometheus));

  const query = encodeURIComponent('agentrace_tool_syscalls_total{gen_ai_tool_name="run_shell",agentrace_syscall="exec"}');
  type Answer = { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  let answer: Answer | undefined;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await get(`http://127.0.0.1:${promPort}/api/v1/query?query=${query}`);
      if (res.status === 200) {
        answer = JSON.parse(res.body) as Answer;
        if (answer.data.result.length > 0) break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(answer && answer.data.result.length === 2, `Prometheus has one series per agent: ${JSON.stringify(answer)}\n${promLog}`);
  const byAgent = new Map(answer.data.result.map((r) => [r.metric['service_name'], r]));
  assert.deepEqual([...byAgent.keys()].sort(), ['agent-one', 'agent-two']);
  for (const series of byAgent.values()) {
    assert.equal(series.metric['job'], 'agentrace');
    assert.equal(series.metric['gen_ai_tool_name'], 'run_shell');
  }
  assert.equal(Number(byAgent.get('agent-two')!.value[1]), served, 'what Prometheus stored is what the sidecar served');

  const targets = JSON.parse((await get(`http://127.0.0.1:${promPort}/api/v1/targets`)).body) as { data: { activeTargets: Array<{ health: string; lastError: string }> } };
  assert.deepEqual(targets.data.activeTargets.map((x) => [x.health, x.lastError]), [['up', '']], 'the scrape itself is clean');

  // OTLP: the final collection at shutdown, one resource per agent
  await stop(sidecar.child);
  const lines = fs.readFileSync(path.join(dir, 'scraped.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { resourceMetrics?: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeMetrics: Array<{ metrics: Array<{ name: string }> }> }> });
  const last = new Map<string, string[]>();
  for (const line of lines) {
    for (const rm of line.resourceMetrics ?? []) {
      const service = rm.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      last.set(service, rm.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name)));
    }
  }
  for (const service of ['agent-one', 'agent-two']) assert.ok(last.get(service)?.includes('agentrace.tool.syscalls'), `${service}'s tool metrics under its resource: ${[...last.keys()].join(', ')}`);
  assert.ok(!last.get('agentrace-sidecar')?.includes('agentrace.tool.syscalls'), "no agent's tool metrics under the sidecar's resource");
  assert.ok(last.get('agentrace-sidecar')?.includes('agentrace.events.dropped'), "the sidecar's own counters under its resource");
});

test('/healthz turns unhealthy while the collector refuses, says why, and healthy again once it answers; /readyz stays ready', async (t) => {
  if (!requireBpf(t)) return;
  const port = await freePort(); // nobody listens there yet
  const sidecar = await startSidecar('health', ['--otlp-endpoint', `http://127.0.0.1:${port}`], {
    OTEL_EXPORTER_OTLP_TIMEOUT: '300',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
  });
  t.after(() => stop(sidecar.child));

  let healthz = await get(`${sidecar.url}/healthz`);
  assert.deepEqual(healthz, { status: 200, body: 'ok\n' }, 'healthy before anything was exported');
  await runAgent(sidecar.socket);
  // metrics (every 500 ms) fail first; wait for the agent's spans to have failed too
  const deadline = Date.now() + 15_000;
  while (!(healthz = await get(`${sidecar.url}/healthz`)).body.includes('spans to')) {
    assert.ok(Date.now() < deadline, `the failing span export never showed in /healthz: ${healthz.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(healthz.status, 503);
  for (const signal of ['traces', 'metrics']) {
    assert.match(healthz.body, new RegExp(`to http://127\\.0\\.0\\.1:${port}/v1/${signal}: \\d+ export\\(s\\) failed in a row, the last: connect ECONNREFUSED`));
  }
  const readyz = await get(`${sidecar.url}/readyz?verbose`);
  assert.equal(readyz.status, 200, readyz.body);
  assert.match(readyz.body, /^ok\nprobes .*: attached/);

  // The collector comes up on that port: the next exports work, and /healthz says so.
  const collector = await startCollector(undefined, port);
  t.after(() => collector.close());
  await runAgent(sidecar.socket);
  const again = Date.now() + 20_000;
  while ((healthz = await get(`${sidecar.url}/healthz`)).status !== 200) {
    assert.ok(Date.now() < again, `never healthy again: ${healthz.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(healthz.body, 'ok\n');
  assert.ok(collector.received.some((r) => r.url === '/v1/traces'), `spans reached the collector: ${collector.received.map((r) => r.url).join(', ')}`);
  await stop(sidecar.child);
  assert.match(sidecar.stderr(), /export failed: connect ECONNREFUSED/);
  assert.match(sidecar.stderr(), /export works again, after \d+ failed export\(s\)/);
});

test('--metrics-port: a bad value is a usage error naming it; a port in use is an error naming the errno', async (t) => {
  const bad = spawn(bin, ['sidecar', '--socket', path.join(dir, 'bad.sock'), '--metrics-port', 'localhost:http'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(bad);
  let err = '';
  bad.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(bad, 'exit')) as [number | null];
  assert.equal(code, 2, err);
  assert.match(err, /--metrics-port "localhost:http": expected \[HOST:\]PORT, e\.g\. 9464 or 0\.0\.0\.0:9464/);

  if (!requireBpf(t)) return;
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const busy = spawn(bin, ['sidecar', '--socket', path.join(dir, 'busy.sock'), '--otlp-file', path.join(dir, 'busy.jsonl'), '--metrics-port', `127.0.0.1:${(taken.address() as net.AddressInfo).port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(busy);
  let busyErr = '';
  busy.stderr!.on('data', (d: Buffer) => (busyErr += d.toString()));
  const [busyCode] = (await once(busy, 'exit')) as [number | null];
  assert.equal(busyCode, 1, busyErr);
  assert.match(busyErr, /cannot serve \/metrics and \/healthz on 127\.0\.0\.1:\d+: EADDRINUSE/);
  assert.ok(!fs.existsSync(path.join(dir, 'busy.sock')), 'the agent socket was removed again');
});
