// Per-tool policy (issue 18) on the real kernel, Node 20 and 24: the sidecar
// loads a policy file's rules into the kernel, and the cgroup connect and
// sendmsg hooks decide for the exact tool call: 16 calls at once in one
// thread, half of a tool allowed and half of a tool denied, get their own
// answers (TCP connects; DNS over UDP, raw sends and a Resolver; tools named
// by pattern), each decision on its own call's span. Also: kill mode on a
// tool's shell child, audit mode, a reload between two calls of a running
// agent, and what happens outside calls (the outside rule, a log record,
// the decisions metric).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compilePolicy, createExporters, createLogExporters, parsePolicy, readPolicy, resolveOtlpConfig, resolveOtlpLogsConfig, resolveOtlpMetricsConfig, Sidecar } from '@agentrace/sidecar';
import { requireBpf } from './support/bpf.js';
import { startDnsServer } from './support/dns-server.js';
import { ancestry, readOtlpFile as spans, readOtlpLogs, readOtlpSums, type FlatSpan } from './support/otlp.js';
import { Rig, requireBothNodes, runtimes } from './support/framework-agent.js';

const agent = fileURLToPath(new URL('./fixtures/policy-agent.mjs', import.meta.url));
const bystander = fileURLToPath(new URL('./fixtures/bystander.mjs', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));
const rig = Rig.create('policy');
after(() => rig.close());

test('the policy agent runs on Node 20 and Node 24 (in CI)', (t) => requireBothNodes(t));

function policyFor(port: number, deniedMode: 'enforce' | 'audit') {
  return compilePolicy(
    parsePolicy(
      `version: 1
tools:
  reach_allowed:
    network: { mode: enforce, allow: [{ cidr: 127.0.0.1, ports: [${port}], protocol: tcp }] }
  reach_denied:
    network: { mode: ${deniedMode}, allow: [{ cidr: 127.0.0.1, ports: [${port + 1 > 65535 ? port - 1 : port + 1}] }] }
`,
      'policy.yaml',
    ),
  );
}

/** The connect span of each call, by call id: the one under that call's own execute_tool span. */
function connectsByCall(spans: FlatSpan[], port: number): Map<string, FlatSpan[]> {
  const out = new Map<string, FlatSpan[]>();
  for (const s of spans.filter((x) => x.attributes['network.peer.port'] === port)) {
    const tools = ancestry(s, spans).filter((a) => a.name.startsWith('execute_tool '));
    assert.equal(tools.length, 1, `connect span ${s.spanId} is under exactly one tool call`);
    const key = tools[0]!.spanId;
    out.set(key, [...(out.get(key) ?? []), s]);
  }
  return out;
}

for (const [runtime, node] of runtimes) {
  test(`16 calls at once in one thread: every reach_allowed connect succeeds, every reach_denied one fails with EPERM inside its own call, each decision on its own call's connect span; an untracked process is unaffected (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const [target] = await rig.plan(`policy-${runtime.replace(/\W+/g, '')}`, 1);
    const port = target!.port;
    const calls = Array.from({ length: 16 }, (_, i) => ({ id: `c${i}`, tool: i % 2 ? 'reach_denied' : 'reach_allowed' }));
    const policy = policyFor(port, 'enforce');
    const { agents, spans } = await rig.runAll(
      `enforce-${runtime.replace(/\W+/g, '')}`,
      [
        { script: agent, arg: { port, calls }, node },
        { script: bystander, arg: { port }, node },
      ],
      { policy },
    );
    const [a, b] = agents;
    assert.equal(a!.code, 0, `the agent ran: ${a!.stderr}`);
    const { results } = JSON.parse(a!.stdout) as { results: Record<string, string> };
    for (const c of calls) assert.equal(results[c.id], c.tool === 'reach_allowed' ? 'ok' : 'EPERM', `${c.id} (${c.tool})`);
    assert.deepEqual(JSON.parse(b!.stdout), { result: 'ok' }, 'the untracked bystander connected');

    const tools = spans.filter((s) => s.name.startsWith('execute_tool reach_'));
    assert.equal(tools.length, 16, 'one span per call');
    const byCall = connectsByCall(spans, port);
    for (const tool of tools) {
      const mine = byCall.get(tool.spanId) ?? [];
      assert.equal(mine.length, 1, `${tool.name} ${tool.spanId}: its own connect span`);
      const c = mine[0]!;
      const denied = tool.name === 'execute_tool reach_denied';
      assert.equal(c.attributes['agentrace.policy.decision'], denied ? 'denied' : 'allowed');
      assert.match(String(c.attributes['agentrace.policy.rule']), denied ? /^tools\.reach_denied\.network \(policy\.yaml:\d+\)$/ : /^tools\.reach_allowed\.network/);
      if (denied) {
        assert.equal(c.attributes['agentrace.connect.result'], 'EPERM');
        assert.deepEqual(
          c.events?.map((e) => [e.name, e.attributes?.['agentrace.policy.decision'], e.attributes?.['network.peer.port']]),
          [['agentrace.policy.decision', 'denied', port]],
          'the denial is a span event with the destination',
        );
      } else {
        assert.match(String(c.attributes['agentrace.connect.result']), /^(ok|in_progress)$/, "Node's non-blocking connect: under way, not refused");
        assert.equal(c.events?.length ?? 0, 0, 'an allowed connect records no decision event');
      }
    }
  });
}

for (const [runtime, node] of runtimes) {
  test(`tool name patterns, first match wins: reach_a* allows the port, reach_* denies it; 16 calls at once in one thread, each decided by its own pattern (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const [target] = await rig.plan(`policy-glob-${runtime.replace(/\W+/g, '')}`, 1);
    const port = target!.port;
    const calls = Array.from({ length: 16 }, (_, i) => ({ id: `g${i}`, tool: i % 2 ? 'reach_denied' : 'reach_allowed' }));
    const policy = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  "reach_a*":
    network: { mode: enforce, allow: [{ cidr: 127.0.0.1, ports: [${port}] }] }
  "reach_*":
    network: { mode: enforce, allow: [] }
`,
        'policy.yaml',
      ),
    );
    const { code, stdout, stderr, spans } = await rig.run(`glob-${runtime.replace(/\W+/g, '')}`, agent, { port, calls }, node, { policy });
    assert.equal(code, 0, `the agent ran: ${stderr}`);
    const { results } = JSON.parse(stdout) as { results: Record<string, string> };
    for (const c of calls) assert.equal(results[c.id], c.tool === 'reach_allowed' ? 'ok' : 'EPERM', `${c.id} (${c.tool})`);
    const byCall = connectsByCall(spans, port);
    for (const tool of spans.filter((s) => s.name.startsWith('execute_tool reach_'))) {
      const [c] = byCall.get(tool.spanId) ?? [];
      const denied = tool.name.endsWith('reach_denied');
      assert.equal(c?.attributes['agentrace.policy.decision'], denied ? 'denied' : 'allowed', `${tool.name} ${tool.spanId}`);
      assert.match(String(c?.attributes['agentrace.policy.rule']), denied ? /^tools\.reach_\*\.network / : /^tools\.reach_a\*\.network /);
    }
  });
}

for (const [runtime, node] of runtimes) {
  test(`audit mode changes nothing but records: every connect succeeds, the breaches are recorded on their own calls (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const [target] = await rig.plan(`policy-audit-${runtime.replace(/\W+/g, '')}`, 1);
    const port = target!.port;
    const calls = Array.from({ length: 8 }, (_, i) => ({ id: `a${i}`, tool: i % 2 ? 'reach_denied' : 'reach_allowed' }));
    const { code, stdout, spans } = await rig.run(`audit-${runtime.replace(/\W+/g, '')}`, agent, { port, calls }, node, { policy: policyFor(port, 'audit') });
    assert.equal(code, 0);
    const { results } = JSON.parse(stdout) as { results: Record<string, string> };
    for (const c of calls) assert.equal(results[c.id], 'ok', `${c.id} (${c.tool}) connected`);
    const byCall = connectsByCall(spans, port);
    for (const tool of spans.filter((s) => s.name.startsWith('execute_tool reach_'))) {
      const [c] = byCall.get(tool.spanId) ?? [];
      assert.ok(c, `${tool.name}: its connect span`);
      assert.equal(c.attributes['agentrace.policy.decision'], tool.name.endsWith('reach_denied') ? 'audited' : 'allowed');
    }
  });
}

const dnsAgent = fileURLToPath(new URL('./fixtures/policy-dns-agent.mjs', import.meta.url));
const execAgent = fileURLToPath(new URL('./fixtures/policy-exec-agent.mjs', import.meta.url));
const reloadAgent = fileURLToPath(new URL('./fixtures/policy-reload-agent.mjs', import.meta.url));
/** test/fixtures/c/uring-connect.c, built once: a connect through io_uring, never connect(2). */
const uringConnect = path.join(rig.dir, 'uring-connect');
execFileSync('clang', ['-O2', '-Wall', '-o', uringConnect, fileURLToPath(new URL('./fixtures/c/uring-connect.c', import.meta.url))]);

/** The spans under each tool call, by the call's span id. */
function underCalls(spans: FlatSpan[], pick: (s: FlatSpan) => boolean): Map<string, FlatSpan[]> {
  const out = new Map<string, FlatSpan[]>();
  for (const s of spans.filter(pick)) {
    const tools = ancestry(s, spans).filter((a) => a.name.startsWith('execute_tool '));
    assert.equal(tools.length, 1, `span ${s.name} ${s.spanId} is under exactly one tool call`);
    out.set(tools[0]!.spanId, [...(out.get(tools[0]!.spanId) ?? []), s]);
  }
  return out;
}

for (const [runtime, node] of runtimes) {
  test(`UDP DNS, 16 calls at once in one thread: lookup_allowed's queries reach the resolver, lookup_denied's fail inside their own calls (a raw send: EPERM), each denial recorded under its call (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const dns = await startDnsServer(0);
    t.after(() => dns.close());
    const calls = Array.from({ length: 16 }, (_, i) => ({ id: `d${i}`, tool: i % 2 ? 'lookup_denied' : 'lookup_allowed' }));
    const policy = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  lookup_allowed:
    network: { mode: enforce, dns: ["127.0.0.1:${dns.port}"] }
  lookup_denied:
    network: { mode: enforce, dns: ["127.0.0.1:${dns.port === 65535 ? 65534 : dns.port + 1}"] }
`,
        'policy.yaml',
      ),
    );
    const { code, stdout, stderr, spans } = await rig.run(`dns-${runtime.replace(/\W+/g, '')}`, dnsAgent, { port: dns.port, calls }, node, { policy });
    assert.equal(code, 0, `the agent ran: ${stderr}`);
    const { results } = JSON.parse(stdout) as { results: Record<string, { raw: string; resolver: string }> };
    for (const c of calls) {
      const r = results[c.id]!;
      if (c.tool === 'lookup_allowed') assert.deepEqual(r, { raw: 'answered', resolver: 'answered' }, c.id);
      else {
        assert.equal(r.raw, 'EPERM', `${c.id}: the raw query's send was refused`);
        assert.notEqual(r.resolver, 'answered', `${c.id}: the resolver's query did not get through`);
      }
    }
    const allowedNames = calls.filter((c) => c.tool === 'lookup_allowed').flatMap((c) => [`raw-${c.id}.test`, `res-${c.id}.test`]);
    assert.deepEqual([...dns.asked].sort(), allowedNames.sort(), 'the server heard the allowed calls, and only them');

    const tools = spans.filter((s) => s.name.startsWith('execute_tool lookup_'));
    assert.equal(tools.length, 16, 'one span per call');
    const decided = underCalls(spans, (s) => s.attributes['agentrace.policy.decision'] !== undefined && s.attributes['network.peer.port'] === dns.port);
    for (const tool of tools) {
      const denied = tool.name === 'execute_tool lookup_denied';
      const mine = decided.get(tool.spanId) ?? [];
      const connects = mine.filter((s) => s.name.startsWith('connect '));
      const sends = mine.filter((s) => s.name.startsWith('send '));
      assert.equal(connects.length, 1, `${tool.name} ${tool.spanId}: the resolver's connect, decided`);
      assert.equal(connects[0]!.attributes['network.transport'], 'udp');
      assert.equal(connects[0]!.attributes['agentrace.policy.decision'], denied ? 'denied' : 'allowed');
      // allowed sends are not events; a refused one is, under its own call
      assert.equal(sends.length, denied ? 1 : 0, `${tool.name} ${tool.spanId}: ${denied ? 'its refused send' : 'no send span'}`);
      if (denied) {
        const s = sends[0]!;
        assert.equal(s.attributes['agentrace.policy.decision'], 'denied');
        assert.match(String(s.attributes['agentrace.policy.rule']), /^tools\.lookup_denied\.network \(policy\.yaml:\d+\)$/);
        assert.equal(s.attributes['network.transport'], 'udp');
        assert.equal(s.status?.code, 2, 'the send failed');
        assert.deepEqual(
          s.events?.map((e) => [e.name, e.attributes?.['agentrace.policy.decision'], e.attributes?.['network.peer.address'], e.attributes?.['network.peer.port']]),
          [['agentrace.policy.decision', 'denied', '127.0.0.1', dns.port]],
        );
      }
    }
  });
}

const hostAgent = fileURLToPath(new URL('./fixtures/policy-host-agent.mjs', import.meta.url));

/** An HTTP server on `host` that answers its own name; on `port` when given. */
async function nameServer(host: string, port = 0): Promise<http.Server & { heard: number }> {
  const server = Object.assign(
    http.createServer((_req, res) => {
      server.heard++;
      res.end(host);
    }),
    { heard: 0 },
  );
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

for (const [runtime, node] of runtimes) {
  test(`host names, 16 calls at once in one thread: each tool reaches the addresses its own lookups of the host its rule names returned, and nothing else (another tool's name, an address by itself: EPERM inside the call) (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    // two names on two loopback addresses, one port; a private /etc/hosts (unshare --mount): no lookup leaves the machine
    const weather = await nameServer('127.0.0.2');
    const port = (weather.address() as { port: number }).port;
    const other = await nameServer('127.0.0.3', port);
    t.after(() => {
      weather.close();
      other.close();
    });
    const hosts = path.join(rig.dir, `hosts-${runtime.replace(/\W+/g, '')}`);
    fs.writeFileSync(hosts, '127.0.0.1 localhost\n127.0.0.2 weather.test\n127.0.0.3 other.test\n');
    const prefix = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hosts];
    const policy = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  fetch_weather:
    network: { mode: enforce, allow: [{ host: weather.test, ports: [${port}], protocol: tcp }] }
  fetch_other:
    network: { mode: enforce, allow: [{ host: Other.Test., ports: [${port}] }] }
`,
        'policy.yaml',
      ),
    );
    // each tool reaches its own host; the other's host, and its own host's address written as an address, are refused
    const kinds = [
      { tool: 'fetch_weather', url: `http://weather.test:${port}/`, want: 'weather.test' },
      { tool: 'fetch_other', url: `http://other.test:${port}/`, want: 'other.test' },
      { tool: 'fetch_weather', url: `http://other.test:${port}/`, want: 'EPERM' },
      { tool: 'fetch_other', url: `http://127.0.0.2:${port}/`, want: 'EPERM' },
    ];
    const calls = Array.from({ length: 16 }, (_, i) => ({ id: `h${i}`, ...kinds[i % 4]! }));
    const { agents, spans } = await rig.runAll(`host-${runtime.replace(/\W+/g, '')}`, [{ script: hostAgent, arg: { calls }, node, prefix }], { policy });
    const a = agents[0]!;
    assert.equal(a.code, 0, `the agent ran: ${a.stderr}`);
    const { results } = JSON.parse(a.stdout) as { results: Record<string, string> };
    for (const c of calls) assert.equal(results[c.id], c.want === 'weather.test' ? '127.0.0.2' : c.want === 'other.test' ? '127.0.0.3' : c.want, `${c.id}: ${c.tool} ${c.url}`);
    assert.equal(weather.heard, 4, "weather.test's server heard fetch_weather's calls, and only them");
    assert.equal(other.heard, 4, "other.test's server heard fetch_other's calls, and only them");

    // each call's connect is decided under its own call, by its own tool's rule
    const tools = spans.filter((s) => s.name.startsWith('execute_tool fetch_'));
    assert.equal(tools.length, 16, 'one span per call');
    const byCall = connectsByCall(spans, port);
    const lookups = underCalls(spans, (s) => s.name.startsWith('getaddrinfo '));
    const tally = new Map<string, number>();
    for (const tool of tools) {
      const [c, more] = byCall.get(tool.spanId) ?? [];
      assert.ok(c && !more, `${tool.name} ${tool.spanId}: its own connect span`);
      const address = String(c.attributes['network.peer.address']);
      const decision = String(c.attributes['agentrace.policy.decision']);
      const key = `${tool.name.replace('execute_tool ', '')} ${address} ${decision}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      assert.match(String(c.attributes['agentrace.policy.rule']), new RegExp(`^tools\\.${tool.name.replace('execute_tool ', '')}\\.network \\(policy\\.yaml:\\d+\\)$`));
      if (decision === 'denied') assert.equal(c.attributes['agentrace.connect.result'], 'EPERM');
      // a call that asked a name: its lookup under it too
      if (address !== '127.0.0.2' || tool.name.endsWith('fetch_weather')) assert.equal((lookups.get(tool.spanId) ?? []).length, 1, `${tool.name} ${tool.spanId}: its getaddrinfo span`);
    }
    assert.deepEqual(Object.fromEntries([...tally].sort()), {
      'fetch_other 127.0.0.2 denied': 4,
      'fetch_other 127.0.0.3 allowed': 4,
      'fetch_weather 127.0.0.2 allowed': 4,
      'fetch_weather 127.0.0.3 denied': 4,
    });
  });
}

for (const [runtime, node] of runtimes) {
  test(`kill mode: a tool's shell child that executes what its rule does not allow is killed before it runs; what it allows runs; audit mode only records (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const policy = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  run_shell:
    exec: { mode: kill, allow: [/bin/sh, df] }
  run_shell_audited:
    exec: { mode: audit, allow: [/bin/sh, df] }
`,
        'policy.yaml',
      ),
    );
    const calls = [
      { id: 'df', tool: 'run_shell', cmd: 'df / >/dev/null && echo df-ran' },
      { id: 'cat', tool: 'run_shell', cmd: 'cat /etc/hostname >/dev/null; echo cat-exit-$?' },
      { id: 'cat-audited', tool: 'run_shell_audited', cmd: 'cat /etc/hostname >/dev/null; echo cat-exit-$?' },
    ];
    const { code, stdout, stderr, spans } = await rig.run(`exec-${runtime.replace(/\W+/g, '')}`, execAgent, { calls }, node, { policy });
    assert.equal(code, 0, `the agent itself is never killed: ${stderr}`);
    assert.deepEqual(JSON.parse(stdout), { results: { df: 'df-ran', cat: 'cat-exit-137', 'cat-audited': 'cat-exit-0' } });

    const procs = underCalls(spans, (s) => s.name.startsWith('process '));
    const call = (tool: string, nth = 0) => spans.filter((s) => s.name === `execute_tool ${tool}`)[nth]!;
    const byExe = (tool: string, nth: number, exe: RegExp) => (procs.get(call(tool, nth).spanId) ?? []).filter((s) => exe.test(String(s.attributes['process.executable.path'])));
    // the shells and df: allowed
    for (const [tool, nth] of [['run_shell', 0], ['run_shell', 1], ['run_shell_audited', 0]] as const) {
      const [shell] = byExe(tool, nth, /^\/bin\/sh$/);
      assert.ok(shell, `${tool} #${nth}: its shell's process span`);
      assert.equal(shell.attributes['agentrace.policy.decision'], 'allowed');
    }
    const [df] = byExe('run_shell', 0, /\/df$/);
    assert.equal(df?.attributes['agentrace.policy.decision'], 'allowed');
    // cat under run_shell: killed, the decision on its process span
    const [killed] = byExe('run_shell', 1, /\/cat$/);
    assert.ok(killed, "the killed cat's process span, under its own call");
    assert.equal(killed.attributes['agentrace.policy.decision'], 'denied');
    assert.match(String(killed.attributes['agentrace.policy.rule']), /^tools\.run_shell\.exec \(policy\.yaml:3\)$/);
    assert.equal(killed.attributes['agentrace.policy.kind'], 'exec');
    assert.equal(killed.attributes['agentrace.process.signal'], 9);
    assert.deepEqual(
      killed.events?.map((e) => [e.name, e.attributes?.['agentrace.policy.decision'], e.attributes?.['process.executable.path']]),
      [['agentrace.policy.decision', 'denied', killed.attributes['process.executable.path']]],
    );
    // cat under run_shell_audited: ran, recorded
    const [audited] = byExe('run_shell_audited', 0, /\/cat$/);
    assert.equal(audited?.attributes['agentrace.policy.decision'], 'audited');
    assert.equal(audited?.attributes['process.exit.code'], 0);
  });
}

const filesAgent = fileURLToPath(new URL('./fixtures/policy-files-agent.mjs', import.meta.url));

for (const [runtime, node] of runtimes) {
  test(`files: a tool's child that writes outside its rule's prefixes (by .., by a link) is killed before it writes a byte; what the rule allows is written; audit mode only records; an open rule kills a read elsewhere; the agent's own writes are recorded, never killed, in and outside calls (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const dir = fs.mkdtempSync(path.join(rig.dir, `files-${runtime.replace(/\W+/g, '')}-`));
    const allowed = path.join(dir, 'allowed');
    const denied = path.join(dir, 'denied');
    fs.mkdirSync(allowed);
    fs.mkdirSync(denied);
    fs.symlinkSync(denied, path.join(allowed, 'link'));
    const deep = path.join(allowed, ...Array.from({ length: 34 }, (_, i) => `d${i}`));
    fs.mkdirSync(deep, { recursive: true });
    const secret = path.join(dir, 'secret.txt');
    fs.writeFileSync(secret, 'secret\n');
    const policy = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  run_shell:
    files: { mode: kill, write: [${allowed}/, /dev/null] }
  run_shell_audited:
    files: { mode: audit, write: [${allowed}, /dev/null] }
  run_shell_ro:
    files: { mode: kill, open: [/usr, /etc, /dev, /proc, /sys] }
  write_note:
    files: { mode: kill, write: [${allowed}] }
outside:
  files: { mode: audit, write: [${allowed}] }
`,
        'policy.yaml',
      ),
    );
    const cp = (to: string) => `cp /etc/hostname ${to} ; echo cp-exit-$?`;
    const calls = [
      { id: 'ok', tool: 'run_shell', cmd: `echo a > ${allowed}/a.txt && cp /etc/hostname ${allowed}/b.txt && echo wrote` },
      { id: 'denied', tool: 'run_shell', cmd: cp(`${denied}/c.txt`) },
      { id: 'dotdot', tool: 'run_shell', cmd: cp(`${allowed}/../denied/d.txt`) },
      { id: 'link', tool: 'run_shell', cmd: cp(`${allowed}/link/e.txt`) },
      { id: 'audited', tool: 'run_shell_audited', cmd: cp(`${denied}/f.txt`) },
      { id: 'ro-ok', tool: 'run_shell_ro', cmd: 'cat /etc/hostname > /dev/null; echo cat-exit-$?' },
      { id: 'ro-denied', tool: 'run_shell_ro', cmd: `cat ${secret} > /dev/null; echo cat-exit-$?` },
      // a write is an open too: outside the open prefixes, killed although no write rule is written
      { id: 'ro-write', tool: 'run_shell_ro', cmd: cp(`${dir}/ro.txt`) },
      // deeper than the walk goes: judged as held by no prefix, and said to be partial
      { id: 'deep', tool: 'run_shell_audited', cmd: `cd ${deep} && ${cp('deep.txt')}` },
      { id: 'note', tool: 'write_note', path: `${denied}/note` },
    ];
    const outside = path.join(denied, 'outside.txt');
    const name = `files-${runtime.replace(/\W+/g, '')}`;
    const out = path.join(rig.dir, `${name}.jsonl`);
    const logExporters = createLogExporters(resolveOtlpLogsConfig({ file: out }, {}, resolveOtlpConfig({ file: out }, {})));
    const { code, stdout, stderr, spans } = await rig.run(name, filesAgent, { outside, calls }, node, { policy, logExporters });
    assert.equal(code, 0, `the agent itself is never killed: ${stderr}`);
    assert.deepEqual(JSON.parse(stdout), {
      results: { ok: 'wrote', denied: 'cp-exit-137', dotdot: 'cp-exit-137', link: 'cp-exit-137', audited: 'cp-exit-0', 'ro-ok': 'cat-exit-0', 'ro-denied': 'cat-exit-137', 'ro-write': 'cp-exit-137', deep: 'cp-exit-0', note: 'written' },
    });
    assert.equal(fs.readFileSync(path.join(allowed, 'b.txt'), 'utf8'), fs.readFileSync('/etc/hostname', 'utf8'), 'what the rule allows is written');
    // the killed cp created its file (O_CREAT happened before the decision) and never wrote a byte into it
    for (const f of ['c.txt', 'd.txt', 'e.txt']) assert.equal(fs.statSync(path.join(denied, f)).size, 0, `${f}: created empty, nothing written`);
    assert.equal(fs.statSync(path.join(denied, 'f.txt')).size > 0, true, 'audit mode let the copy happen');

    const call = (id: string) => spans.filter((s) => s.name.startsWith('execute_tool '))[calls.findIndex((c) => c.id === id)]!;
    const decided = underCalls(spans, (s) => s.attributes['agentrace.policy.kind'] === 'files');
    const opens = (id: string) => (decided.get(call(id).spanId) ?? []).map((s) => [s.name, s.attributes['agentrace.policy.decision'], s.attributes['agentrace.file.access'], s.events?.[0]?.attributes?.['file.path']]);
    assert.deepEqual(opens('ok'), [], 'allowed opens are not decisions of their own');
    // the file's own path: .. and the link resolved
    assert.deepEqual(opens('denied'), [[`open ${denied}/c.txt`, 'denied', 'write', `${denied}/c.txt`]]);
    assert.deepEqual(opens('dotdot'), [[`open ${denied}/d.txt`, 'denied', 'write', `${denied}/d.txt`]]);
    assert.deepEqual(opens('link'), [[`open ${denied}/e.txt`, 'denied', 'write', `${denied}/e.txt`]]);
    assert.deepEqual(opens('audited'), [[`open ${denied}/f.txt`, 'audited', 'write', `${denied}/f.txt`]]);
    assert.deepEqual(opens('ro-ok'), []);
    assert.deepEqual(opens('ro-denied'), [[`open ${secret}`, 'denied', 'read', secret]]);
    assert.deepEqual(opens('ro-write'), [[`open ${dir}/ro.txt`, 'denied', 'write', `${dir}/ro.txt`]]);
    const [deepOpen, ...moreDeep] = decided.get(call('deep').spanId) ?? [];
    assert.equal(moreDeep.length, 0);
    assert.equal(deepOpen?.attributes['agentrace.policy.decision'], 'audited');
    assert.equal(deepOpen?.attributes['agentrace.file.path_partial'], 'too-deep');
    // the 32 components nearest the file, the rest an ellipsis
    assert.equal(deepOpen?.attributes['file.path'], `…/${path.relative(path.join(allowed, 'd0', 'd1', 'd2'), path.join(deep, 'deep.txt'))}`);
    // the agent's own writes (its thread, and the threadpool): recorded under the call, never killed
    assert.deepEqual(opens('note').sort(), [
      [`open ${denied}/note.async`, 'audited', 'write', `${denied}/note.async`],
      [`open ${denied}/note.sync`, 'audited', 'write', `${denied}/note.sync`],
    ]);
    const [rule] = decided.get(call('denied').spanId)!;
    assert.match(String(rule!.attributes['agentrace.policy.rule']), /^tools\.run_shell\.files \(policy\.yaml:3\)$/);
    // the killed process: its span says so, under its own call
    const procs = underCalls(spans, (s) => s.name.startsWith('process ') && /\/cp$/.test(String(s.attributes['process.executable.path'])));
    assert.equal(procs.get(call('denied').spanId)?.[0]?.attributes['agentrace.process.signal'], 9);
    // outside any call: a log record (audit), no trace
    const records = readOtlpLogs(out).filter((r) => r.eventName === 'agentrace.policy.decision');
    const mine = records.filter((r) => r.attributes['file.path'] === outside);
    assert.equal(mine.length, 1, `the outside write is a record: ${JSON.stringify(records.map((r) => r.attributes['file.path']))}`);
    assert.equal(mine[0]!.attributes['agentrace.policy.decision'], 'audited');
    assert.equal(mine[0]!.attributes['agentrace.policy.outside'], true);
    assert.equal(mine[0]!.traceId, '');
  });
}

for (const [runtime, node] of runtimes) {
  test(`a reload takes effect for the next call without restarting the agent; a bad file is refused with its line and the running policy stays; outside calls the outside rule decides, exported as a log record; every decision counted (${runtime})`, async (t) => {
    if (!requireBpf(t)) return;
    const [target] = await rig.plan(`policy-reload-${runtime.replace(/\W+/g, '')}`, 1);
    const port = target!.port;
    const dir = fs.mkdtempSync(path.join(rig.dir, 'reload-'));
    const file = path.join(dir, 'policy.yaml');
    const v1 = `version: 1
tools:
  reach:
    network: { mode: enforce, allow: [{ cidr: 127.0.0.1, ports: [${port === 65535 ? 1 : port + 1}] }] }
outside:
  network: { mode: enforce, allow: [] }
`;
    fs.writeFileSync(file, v1);
    const out = path.join(dir, 'out.jsonl');
    const traces = resolveOtlpConfig({ file: out }, {});
    const control = path.join(dir, 'control.sock');
    const sidecar = await Sidecar.start({
      socketPath: path.join(dir, 'agentrace.sock'),
      controlSocketPath: control,
      exporters: createExporters(traces),
      logExporters: createLogExporters(resolveOtlpLogsConfig({ file: out }, {}, traces)),
      metrics: resolveOtlpMetricsConfig({ file: out }, {}, traces),
      policy: compilePolicy(readPolicy(file)),
      policyFile: file,
      log: () => {},
    });
    const agent = spawn(node, [reloadAgent], { env: { ...process.env, AGENTRACE_SOCKET: sidecar.socketPath }, stdio: ['pipe', 'pipe', 'inherit'] });
    t.after(() => {
      if (agent.exitCode === null) agent.kill('SIGKILL');
    });
    const answers = readline.createInterface({ input: agent.stdout })[Symbol.asyncIterator]();
    const ask = async (op: 'call' | 'outside' | 'uring'): Promise<string> => {
      agent.stdin.write(`${JSON.stringify({ op, port, bin: uringConnect })}\n`);
      const { value } = await answers.next();
      return (JSON.parse(String(value)) as { result: string }).result;
    };
    // not spawnSync: the sidecar that answers runs in this process
    const cli = async (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> => {
      const p = spawn(path.join(root, 'bin', 'agentrace'), [...args, '--control', control], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const [status] = (await once(p, 'exit')) as [number | null];
      return { status, stdout, stderr };
    };
    try {
      assert.equal(await ask('outside'), 'EPERM', 'outside any call: the outside rule (enforce, nothing allowed)');
      assert.equal(await ask('call'), 'EPERM', 'v1 does not allow the port');

      fs.writeFileSync(file, `${v1}  bogus: 1\n`);
      const bad = await cli('policy', 'reload');
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /policy reload refused, the running policy stays: .*policy\.yaml:7:\d+: outside\.bogus: unknown key/);
      assert.equal(await ask('call'), 'EPERM', 'the running policy stayed');

      // a pattern now, where v1 named the tool: the running agent is told the new patterns and keys its next call by them
      fs.writeFileSync(file, v1.replace(`ports: [${port === 65535 ? 1 : port + 1}]`, `ports: [${port}]`).replace('  reach:', '  "rea*":'));
      const good = await cli('policy', 'reload');
      assert.equal(good.status, 0, good.stderr);
      assert.match(good.stdout, /policy reloaded from .*policy\.yaml \(2 rules\), in force for the next decision/);
      assert.equal(await ask('call'), 'ok', 'the reloaded policy allows it, the agent never restarted');
      assert.equal(await ask('outside'), 'EPERM', 'outside: still refused');
      // a child of a call that connects through io_uring: no syscall probe sees it, so no call is
      // known; the outside rules decide it (refused here), and say it was unseen
      assert.equal(await ask('uring'), 'EPERM', 'io_uring is no way around the policy');
      agent.stdin.end();
      const [code] = (await once(agent, 'exit')) as [number | null];
      assert.equal(code, 0);
      await sidecar.settle(2000);
    } finally {
      await sidecar.stop();
    }

    // each call's decision names the rule of the policy it was made under
    const calls = spans(out);
    const rules = calls.filter((s) => s.name === `connect 127.0.0.1:${port}`).map((s) => [s.attributes['agentrace.policy.decision'], String(s.attributes['agentrace.policy.rule']).replace(/\(.*\)/, '(F)')]);
    assert.deepEqual(rules, [
      ['denied', 'tools.reach.network (F)'],
      ['denied', 'tools.reach.network (F)'],
      ['allowed', 'tools.rea*.network (F)'],
    ]);
    // outside: no span to carry the decision; a log record of its own
    const records = readOtlpLogs(out).filter((r) => r.eventName === 'agentrace.policy.decision');
    const outside = records.filter((r) => r.attributes['agentrace.policy.unseen'] === undefined);
    const unseen = records.filter((r) => r.attributes['agentrace.policy.unseen'] === true);
    assert.equal(outside.length, 2, 'one record per refused connect outside calls');
    assert.equal(unseen.length, 1, 'the io_uring connect: a record of its own');
    assert.equal(unseen[0]!.attributes['agentrace.policy.decision'], 'denied');
    assert.equal(unseen[0]!.attributes['network.peer.port'], port);
    assert.match(String(unseen[0]!.body), /no syscall probe saw it \(io_uring\)/);
    for (const r of outside) {
      assert.equal(r.traceId, '', 'no trace: no call');
      assert.equal(r.attributes['agentrace.policy.decision'], 'denied');
      assert.equal(r.attributes['agentrace.policy.outside'], true);
      assert.match(String(r.attributes['agentrace.policy.rule']), /^outside\.network \(/);
      assert.equal(r.attributes['network.peer.port'], port);
      assert.equal(r.resource['process.pid'], agent.pid);
    }
    const sums = readOtlpSums(out);
    assert.equal(sums.get('agentrace.policy.decisions{agentrace.policy.decision=denied,agentrace.policy.kind=network,gen_ai.tool.name=reach}'), 2);
    assert.equal(sums.get('agentrace.policy.decisions{agentrace.policy.decision=allowed,agentrace.policy.kind=network,gen_ai.tool.name=reach}'), 1);
    assert.equal(sums.get('agentrace.policy.decisions{agentrace.policy.decision=denied,agentrace.policy.kind=network,agentrace.policy.outside=true}'), 3);
  });
}
