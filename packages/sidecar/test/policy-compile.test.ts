// A policy file's rules as the kernel's tables: tools keyed by the hash the
// SDK writes in its slot, and the longest-block lookup made right by giving
// a block inside another the other's ports too.
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { POLICY_DEFAULT_TOOL, POLICY_OUTSIDE_TOOL } from '@agentrace/bpf';
import { toolHash, ToolPatterns } from '@agentrace/protocol';
import { compilePolicy } from '../src/policy/compile.js';
import { parsePolicy, PolicyError } from '../src/policy/policy-file.js';

test('tools by their hash, default and outside by their ids; rule names say where they are', () => {
  const c = compilePolicy(
    parsePolicy(
      `version: 1
tools:
  fetch_url:
    network: { mode: enforce, allow: [{ cidr: 10.0.0.0/8, ports: [443], protocol: tcp }] }
  run_shell: {}
default:
  network: { mode: audit, allow: [] }
outside:
  network: { mode: enforce, allow: [{ cidr: "::/0", protocol: udp }] }
`,
      'p.yaml',
    ),
  );
  const none = { execMode: 'none', execRule: 0 };
  assert.deepEqual(c.tables.tools, [
    { tool: toolHash('fetch_url'), netMode: 'enforce', netRule: 2, ...none },
    // run_shell names no network rule: the default's, under a name that says for whom
    { tool: toolHash('run_shell'), netMode: 'audit', netRule: 3, ...none },
    { tool: POLICY_DEFAULT_TOOL, netMode: 'audit', netRule: 1, ...none },
    { tool: POLICY_OUTSIDE_TOOL, netMode: 'enforce', netRule: 4, ...none },
  ]);
  assert.deepEqual(c.rules, [
    '(none)',
    'default.network (p.yaml)',
    'tools.fetch_url.network (p.yaml:3)',
    'default.network (p.yaml), for tools.run_shell (p.yaml:5)',
    'outside.network (p.yaml)',
  ]);
  assert.deepEqual(c.defaultRules, ['default.network (p.yaml)']);
  assert.deepEqual(c.tables.net, [
    { tool: toolHash('fetch_url'), protocol: 'tcp', address: '10.0.0.0', prefix: 8, ports: [{ from: 443, to: 443 }] },
    { tool: POLICY_OUTSIDE_TOOL, protocol: 'udp', address: '::', prefix: 0, ports: [] },
  ]);
  assert.deepEqual(c.tables.exec, []);
});

test('exec: absolute paths with their real path, DIR/* as written, bare names where PATH has them; dns: UDP and TCP to the resolver\'s port', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-compile-'));
  try {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.mkdirSync(path.join(dir, 'sbin'));
    fs.writeFileSync(path.join(dir, 'bin', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'bin', 'data'), 'not a program\n', { mode: 0o644 });
    fs.symlinkSync(path.join(dir, 'bin', 'tool'), path.join(dir, 'sbin', 'tool'));
    const text = (allow: string) => `version: 1
tools:
  run_shell:
    exec: { mode: kill, allow: [${allow}] }
    network: { mode: enforce, dns: ["10.0.0.2:5353"] }
`;
    const c = compilePolicy(parsePolicy(text(`${dir}/sbin/tool, tool, /usr/libexec/x/*`), 'p.yaml'), `${dir}/sbin:relative:${dir}/bin`);
    const mine = (p: string) => p.replace(dir, 'DIR');
    assert.deepEqual(
      c.tables.exec.map((e) => [e.tool, mine(e.path)]),
      [
        [toolHash('run_shell'), 'DIR/sbin/tool'],
        [toolHash('run_shell'), 'DIR/bin/tool'],
        [toolHash('run_shell'), 'DIR/sbin/tool'],
        [toolHash('run_shell'), 'DIR/bin/tool'],
        [toolHash('run_shell'), '/usr/libexec/x/*'],
      ].map(([t, p]) => [t, p]),
    );
    assert.deepEqual(c.tables.tools, [{ tool: toolHash('run_shell'), netMode: 'enforce', netRule: 1, execMode: 'kill', execRule: 2 }]);
    assert.deepEqual(c.rules, ['(none)', 'tools.run_shell.network (p.yaml:3)', 'tools.run_shell.exec (p.yaml:3)']);
    assert.deepEqual(
      c.tables.net.map((e) => [e.protocol, e.address, e.prefix, e.ports]),
      [
        ['tcp', '10.0.0.2', 32, [{ from: 5353, to: 5353 }]],
        ['udp', '10.0.0.2', 32, [{ from: 5353, to: 5353 }]],
      ],
    );
    // a bare name PATH does not have (or has only as a file that is not a program) is refused with its line
    for (const name of ['nosuch', 'data']) {
      assert.throws(
        () => compilePolicy(parsePolicy(text(name), 'p.yaml'), `${dir}/bin`),
        (err: unknown) => err instanceof PolicyError && err.line === 4 && new RegExp(`"${name}" is not found on PATH .*; write its absolute path`).test(err.message),
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});


test('a block inside another also allows the ports of the blocks around it (the kernel asks the longest only)', () => {
  const c = compilePolicy(
    parsePolicy(
      `version: 1
tools:
  t:
    network:
      mode: enforce
      allow:
        - { cidr: 10.0.0.0/8, ports: [80] }
        - { cidr: 10.1.2.3, ports: [443], protocol: tcp }
        - { cidr: 192.168.0.0/16 }
        - { cidr: 192.168.1.0/24, ports: [22] }
        - { cidr: 11.0.0.1, ports: [53] }
        - { cidr: "::ffff:11.0.0.0/104", ports: [25] }
`,
      'p.yaml',
    ),
  );
  const tcp = (address: string) => c.tables.net.find((e) => e.protocol === 'tcp' && e.address === address)?.ports;
  const udp = (address: string) => c.tables.net.find((e) => e.protocol === 'udp' && e.address === address)?.ports;
  assert.deepEqual(tcp('10.1.2.3'), [{ from: 80, to: 80 }, { from: 443, to: 443 }]);
  assert.equal(udp('10.1.2.3'), undefined, 'a tcp block adds nothing to udp');
  assert.deepEqual(udp('10.0.0.0'), [{ from: 80, to: 80 }]);
  assert.deepEqual(tcp('192.168.1.0'), [], 'inside a block that allows every port: every port');
  assert.deepEqual(tcp('11.0.0.1'), [{ from: 53, to: 53 }, { from: 25, to: 25 }], 'not inside 10/8; inside ::ffff:11.0.0.0/104, written in IPv6');
});

test('patterns are keyed by their own hash, as the SDK writes it for a name they are the first to match', () => {
  const c = compilePolicy(parsePolicy('version: 1\ntools:\n  "mcp__fs__*":\n    network: { mode: audit, allow: [] }\n  "mcp__*":\n    network: { mode: enforce, allow: [] }\n', 'p.yaml'));
  assert.deepEqual(
    c.tables.tools.map((t) => [t.tool, t.netMode]),
    [
      [toolHash('mcp__fs__*'), 'audit'],
      [toolHash('mcp__*'), 'enforce'],
    ],
  );
  assert.deepEqual(c.tools, ['mcp__fs__*', 'mcp__*']);
  const patterns = new ToolPatterns(c.tools);
  assert.equal(patterns.key('mcp__fs__read'), toolHash('mcp__fs__*'), 'first match wins');
  assert.equal(patterns.key('mcp__net__get'), toolHash('mcp__*'));
  assert.equal(patterns.key('fetch_url'), toolHash('fetch_url'), 'no match: the name itself');
});

test('host names by tool and protocol, a name written twice with its ports merged; files prefixes for writing, and for any open (the write ones too) where open restricts, each with where its links lead', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-compile-'));
  try {
    fs.mkdirSync(path.join(dir, 'real'));
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    const c = compilePolicy(
      parsePolicy(
        `version: 1
tools:
  fetch_url:
    network:
      mode: enforce
      allow:
        - { host: api.example, ports: [443], protocol: tcp }
        - { host: API.example., ports: [8443] }
        - { host: dns.example, protocol: udp }
  run_shell:
    files: { mode: kill, open: [/usr], write: [${dir}/link] }
default:
  files: { mode: audit, write: [/tmp] }
`,
        'p.yaml',
      ),
    );
    const fetch = toolHash('fetch_url');
    const shell = toolHash('run_shell');
    assert.deepEqual(c.tables.hosts, [
      { tool: fetch, protocol: 'tcp', name: 'api.example', ports: [{ from: 443, to: 443 }, { from: 8443, to: 8443 }] },
      { tool: fetch, protocol: 'udp', name: 'api.example', ports: [{ from: 8443, to: 8443 }] },
      { tool: fetch, protocol: 'udp', name: 'dns.example', ports: [] },
    ]);
    assert.deepEqual(
      c.tables.files?.map((f) => [f.tool === shell ? 'run_shell' : f.tool === fetch ? 'fetch_url' : f.tool, f.access, f.prefix.replace(dir, 'DIR')]),
      [
        // fetch_url has no files rule: the default's
        ['fetch_url', 'write', '/tmp'],
        ['run_shell', 'write', 'DIR/link'],
        ['run_shell', 'write', 'DIR/real'],
        ['run_shell', 'open', '/usr'],
        ['run_shell', 'open', 'DIR/link'],
        ['run_shell', 'open', 'DIR/real'],
        [POLICY_DEFAULT_TOOL, 'write', '/tmp'],
      ],
    );
    const entry = (tool: number) => c.tables.tools.find((t) => t.tool === tool);
    assert.deepEqual([entry(shell)?.filesMode, entry(shell)?.filesRestricts], ['kill', { open: true, write: true }]);
    assert.deepEqual([entry(fetch)?.filesMode, entry(fetch)?.filesRestricts], ['audit', { open: false, write: true }]);
    assert.equal(c.rules[entry(fetch)!.filesRule!], 'default.files (p.yaml), for tools.fetch_url (p.yaml:3)');
    assert.deepEqual(c.defaultRules, ['default.files (p.yaml)']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
