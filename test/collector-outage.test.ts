// A collector's bad day, as `agentrace sidecar` lives it: nobody listening,
// then HTTP 500, then 401, then no answer at all, then back. Each change is
// said once, with what the collector said; what was exported is exactly what
// the collector decoded; a flood while it hangs is dropped and counted with
// the sidecar's memory bounded; SIGTERM while it hangs exits within the
// export timeout's bound and says what was not written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { requireBpf } from './support/bpf.js';
import { freePort } from './support/free-port.js';
import { decodeProtobufRequest, summarize } from './otlp-schema.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'agentrace');
const agent = path.join(root, 'examples/agent/agent.mjs');
const flood = fileURLToPath(new URL('./fixtures/flood-agent.mjs', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-outage-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

type Mode = 'ok' | '500' | '401' | 'hang';

/** A collector on a fixed port, started later; counts the spans it decoded from the requests it answered 200. */
class Collector {
  mode: Mode = 'ok';
  spansTaken = 0;
  private readonly hung: http.ServerResponse[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (this.mode === 'hang') return void this.hung.push(res);
      if (this.mode === '500') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('database is on fire');
      if (this.mode === '401') return void res.writeHead(401, { 'content-type': 'text/plain' }).end('bad api key');
      if (req.url === '/v1/traces') {
        const s = summarize(decodeProtobufRequest(Buffer.concat(chunks)));
        for (const r of s.resources) for (const scope of r.scopes) this.spansTaken += scope.spans.length;
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });

  constructor(readonly port: number) {}

  async listen(): Promise<void> {
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
  }

  close(): void {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    this.server.close();
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

async function run(script: string, args: string[], socket: string): Promise<void> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, AGENTRACE_SOCKET: socket } });
  children.push(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `${path.basename(script)} ran`);
}

test('down, 500, 401, hanging, back: each change said once with what the collector said; exported is what it took; a flood while it hangs is dropped and counted in bounded memory; SIGTERM while it hangs exits in bounded time', { timeout: 180_000 }, async (t) => {
  if (!requireBpf(t)) return;
  const port = await freePort();
  const socket = path.join(dir, 'agentrace.sock');
  const sidecar = spawn(bin, ['sidecar', '--socket', socket, '--otlp-endpoint', `http://127.0.0.1:${port}`, '--logs', 'none', '--max-events-per-span', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OTEL_EXPORTER_OTLP_TIMEOUT: '500', OTEL_METRICS_EXPORTER: 'none' },
  });
  children.push(sidecar);
  let stderr = '';
  sidecar.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  while (!stderr.includes('probes attached')) {
    assert.equal(sidecar.exitCode, null, stderr);
    await new Promise((r) => setTimeout(r, 50));
  }
  const said = (): string[] => stderr.split('\n').filter((l) => l.includes('spans to http://'));
  /** Runs the example agent, then waits until the sidecar has said `n` lines about the span export. */
  const phase = async (n: number): Promise<string> => {
    await run(agent, [], socket);
    const deadline = Date.now() + 15_000;
    while (said().length < n) {
      assert.ok(Date.now() < deadline, `line ${n} never came; so far:\n${said().join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return said()[n - 1]!;
  };

  assert.match(await phase(1), /^agentrace: export: spans to http:\/\/127\.0\.0\.1:\d+\/v1\/traces: export failed: connect ECONNREFUSED/);
  const collector = new Collector(port);
  t.after(() => collector.close());
  await collector.listen();
  collector.mode = '500';
  assert.match(await phase(2), /: export still failing, now: HTTP 500 Internal Server Error: database is on fire$/);
  collector.mode = '401';
  assert.match(await phase(3), /: export still failing, now: HTTP 401 Unauthorized: bad api key$/);
  collector.mode = 'hang';
  assert.match(await phase(4), /: export still failing, now: Request timed out$/);
  collector.mode = 'ok';
  assert.match(await phase(5), /: export works again, after \d+ failed export\(s\)$/);

  const traceCounts = async (): Promise<{ exported: number; failed: number; dropped: number }> => {
    const status = spawn(bin, ['status', '--json', '--control', path.join(dir, 'control.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let json = '';
    status.stdout!.on('data', (d: Buffer) => (json += d.toString()));
    await once(status, 'exit');
    return (JSON.parse(json) as { stats: { export: { traces: { exported: number; failed: number; dropped: number } } } }).stats.export.traces;
  };
  // the agent's last spans (its kernel summaries come a little later) may still be on their way
  let counts = await traceCounts();
  for (const until = Date.now() + 5000; counts.exported !== collector.spansTaken && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 200));
    counts = await traceCounts();
  }
  assert.equal(counts.exported, collector.spansTaken, 'exported is exactly what the collector decoded');
  assert.ok(counts.failed > 0, `the failed spans are counted: ${JSON.stringify(counts)}`);

  // A flood while the collector hangs: the queue is bounded, the rest dropped and counted.
  collector.mode = 'hang';
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  const N = 20_000;
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(files, `f${i}`), '');
  const before = rssKb(sidecar.pid!);
  await run(flood, [files, String(N)], socket);
  await new Promise((r) => setTimeout(r, 1500));
  const grown = rssKb(sidecar.pid!) - before;
  assert.ok(grown < 150 * 1024, `the sidecar grew ${Math.round(grown / 1024)} MB for ${N} spans it could not send`);

  // SIGTERM while the collector still hangs: bounded by the export timeout per queued batch and the flush bound.
  const t0 = Date.now();
  sidecar.kill('SIGTERM');
  const [code] = (await once(sidecar, 'exit')) as [number | null];
  const took = Date.now() - t0;
  assert.equal(code, 0, stderr);
  assert.ok(took < 10_000, `SIGTERM took ${took} ms with a hung collector`);
  const final = stderr.split('\n').find((l) => /OTLP http\/protobuf .*: \d+ spans exported, \d+ failed, \d+ dropped \(queue full\)/.test(l));
  assert.ok(final, `the shutdown line counts what was not written:\n${stderr}`);
  const [, exported, failed, dropped] = /: (\d+) spans exported, (\d+) failed, (\d+) dropped/.exec(final)!.map(Number);
  assert.equal(exported, collector.spansTaken, 'nothing claimed as exported that the collector did not take');
  assert.ok(dropped! > 0 && failed! > counts.failed, `the flood was dropped and failed, counted: ${final}`);
  t.diagnostic(`flood of ${N} spans while hung: RSS +${Math.round(grown / 1024)} MB; SIGTERM took ${took} ms; ${final.trim()}`);
});
