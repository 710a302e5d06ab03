// The policy file: what it accepts, how it resolves a tool's rules, and
// that every mistake is refused with its line, column and reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toolPattern } from '@agentrace/protocol';
import { parsePolicy, PolicyError, readPolicy, rulesFor } from '../src/policy/policy-file.js';

const GOOD = `# the example agent's policy
version: 1
tools:
  fetch_url:
    network:
      mode: enforce
      allow:
        - cidr: 127.0.0.1
          ports: [8080, "9000-9100"]
          protocol: tcp
  "mcp__*":
    network: { mode: audit, allow: [{ cidr: "::1/128" }] }
  run_shell: {}
default:
  network: { mode: enforce, allow: [] }
outside:
  network: { mode: audit, allow: [{ cidr: 0.0.0.0/0 }] }
`;

test('a policy file: tools by pattern, the default for the rest and for unnamed tools, outside for work outside calls', () => {
  const p = parsePolicy(GOOD, 'policy.yaml');
  assert.deepEqual(
    p.tools.map((t) => [t.pattern, t.line]),
    [
      ['fetch_url', 4],
      ['mcp__*', 11],
      ['run_shell', 13],
    ],
  );
  assert.deepEqual(rulesFor(p, 'fetch_url').rules.network, {
    mode: 'enforce',
    allow: [{ family: 4, address: '127.0.0.1', prefix: 32, ports: [{ from: 8080, to: 8080 }, { from: 9000, to: 9100 }], protocol: 'tcp' }],
    hosts: [],
    dns: [],
  });
  assert.equal(rulesFor(p, 'mcp__files__read').source, 'tools.mcp__*');
  assert.deepEqual(rulesFor(p, 'mcp__files__read').rules.network?.allow[0], { family: 6, address: '::1', prefix: 128, ports: [], protocol: 'any' });
  // run_shell names no network rule: the default's
  assert.deepEqual(rulesFor(p, 'run_shell'), { rules: { network: { mode: 'enforce', allow: [], hosts: [], dns: [] } }, source: 'tools.run_shell' });
  assert.equal(rulesFor(p, 'write_file').source, 'default');
  assert.equal(rulesFor(p, undefined).source, 'default');
  assert.equal(p.outside.network?.allow[0]?.prefix, 0);
});

test('tool patterns: * is any run of characters, ? one, everything else itself', () => {
  assert.ok(toolPattern('mcp__*').test('mcp__files__read'));
  assert.ok(!toolPattern('mcp__*').test('xmcp__a'));
  assert.ok(toolPattern('get_?').test('get_x'));
  assert.ok(!toolPattern('get_?').test('get_xy'));
  assert.ok(!toolPattern('a.b').test('axb'), 'a dot is a dot');
  assert.ok(toolPattern('a+(b)').test('a+(b)'));
});

/** The error a policy text is refused with. */
function refusal(text: string): PolicyError {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    assert.ok(err instanceof PolicyError, `a PolicyError, not ${String(err)}`);
    assert.equal(err.code, 'AR_ERR_POLICY');
    return err;
  }
  assert.fail('the policy was accepted');
}

test('every mistake is refused with its line, column and reason', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - cidr: 10.0.0.300/8\n', 7, /not an IPv4 or IPv6 address/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - cidr: 10.0.0.0/33\n', 7, /prefix length must be 0 to 32/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - cidr: 10.0.0.0/8\n          ports: ["90-80"]\n', 8, /port range "90-80"/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: block\n      allow: []\n', 5, /tools\.a\.network\.mode/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: audit\n      alow: []\n', 6, /tools\.a\.network\.alow: unknown key; tools\.a\.network takes mode, allow, dns/],
    ['version: 1\ndefault:\n  network:\n    allow: []\n', 3, /default\.network\.mode/],
    ['version: 1\ntools:\n  a:\n    exec: { mode: enforce, allow: [/bin/sh] }\n', 4, /exec mode is kill .* or audit; enforce is not possible here \(no BPF LSM/],
    ['version: 1\ntools:\n  a:\n    exec:\n      mode: kill\n      allow:\n        - /bin/sh\n        - bin/df\n', 8, /"bin\/df": an absolute path, DIR\/\*, or a bare name/],
    ['version: 1\ntools:\n  a:\n    exec:\n      mode: kill\n      allow: [/usr/*/df]\n', 6, /a pattern is DIR\/\*/],
    ['version: 1\ntools:\n  a:\n    exec: { mode: kill, allow: [], only: 1 }\n', 4, /tools\.a\.exec\.only: unknown key; tools\.a\.exec takes mode, allow/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      dns: [127.0.0.53, "10.0.0.2:99999"]\n', 6, /"10\.0\.0\.2:99999": the port must be 1 to 65535/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      dns:\n        - resolver.example\n', 7, /"resolver\.example" is not a resolver/],
    ['version: 1\ntools:\n  a:\n    files: { mode: kill, allow: [/tmp] }\n', 4, /tools\.a\.files\.allow: unknown key; tools\.a\.files takes mode, open, write/],
    ['version: 1\ntools:\n  a:\n    files: { mode: kill }\n', 4, /a files rule says where opens may be made \(`open`\), where opens for writing may \(`write`\), or both/],
    ['version: 1\ntools:\n  a:\n    files: { mode: enforce, write: [/tmp] }\n', 4, /files mode is kill .* or audit; enforce is not possible here \(no BPF LSM: an open cannot be refused\)/],
    ['version: 1\ntools:\n  a:\n    files:\n      mode: kill\n      write: [/tmp, tmp]\n', 6, /"tmp": an absolute path/],
    ['version: 1\ntools:\n  a:\n    files:\n      mode: kill\n      open:\n        - /usr\n        - /tmp/../etc\n', 8, /"\/tmp\/\.\.\/etc": no \., \.\. or \/\//],
    ['version: 1\ntools:\n  a:\n    files:\n      mode: kill\n      write: [/tmp/*]\n', 6, /a path prefix, no \* or \?/],
    ['version: 1\noutside:\n  files:\n    write: [/tmp]\n    mode: kill\n', 5, /outside\.files: mode kill would kill the agent itself; only audit/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - host: 10.0.0.1\n', 7, /"10\.0\.0\.1" is an address: write it as `cidr: 10\.0\.0\.1`/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - host: "*.example.com"\n', 7, /no wildcards in host names/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - host: bad_-.exa mple\n', 7, /is not a host name/],
    ['version: 1\ntools:\n  a:\n    network:\n      mode: enforce\n      allow:\n        - { host: a.example, cidr: 10.0.0.0/8 }\n', 7, /either `cidr: BLOCK` or `host: NAME`, one of them/],
    ['version: 1\noutside:\n  exec:\n    allow: []\n    mode: kill\n', 5, /mode kill would kill the agent itself; only audit/],
    ['version: 2\n', 1, /version/],
    ['version: 1\ntools:\n  a: {}\n  a: {}\n', 4, /[Mm]ap keys must be unique/],
    ['version: 1\ntools: [\n', 3, /./],
  ];
  for (const [text, line, reason] of cases) {
    const err = refusal(text);
    assert.equal(err.line, line, `${JSON.stringify(text)}: line ${err.line} (${err.message})`);
    assert.equal(typeof err.column, 'number');
    assert.match(err.reason, reason);
    assert.match(err.message, new RegExp(`^p\\.yaml:${line}:\\d+: .+$`));
  }
});

test('a policy file that cannot be read says so, with its errno', () => {
  assert.throws(() => readPolicy('/nonexistent/policy.yaml'), (err: unknown) => err instanceof PolicyError && /\/nonexistent\/policy\.yaml: cannot read it \(ENOENT\)/.test(err.message));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-policy-'));
  try {
    const file = path.join(dir, 'p.json');
    fs.writeFileSync(file, JSON.stringify({ version: 1, default: { network: { mode: 'audit', allow: [{ cidr: '::/0' }] } } }));
    assert.equal(readPolicy(file).default.network?.allow[0]?.family, 6, 'JSON is YAML too');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('files: open and write prefixes, normalized; host: names lower-cased, without a trailing dot', () => {
  const p = parsePolicy(
    `version: 1
tools:
  run_shell:
    files: { mode: kill, open: [/usr/, /, /etc], write: [/tmp//] }
  fetch_url:
    network: { mode: enforce, allow: [{ host: API.Weather.example., ports: [443], protocol: tcp }, { host: other.example }] }
default:
  files: { mode: audit, write: [/tmp] }
`,
    'p.yaml',
  );
  assert.deepEqual(p.tools[0]!.rules.files, { mode: 'kill', open: ['/usr', '/', '/etc'], write: ['/tmp'] });
  assert.deepEqual(p.tools[1]!.rules.network?.hosts, [
    { name: 'api.weather.example', ports: [{ from: 443, to: 443 }], protocol: 'tcp' },
    { name: 'other.example', ports: [], protocol: 'any' },
  ]);
  // fetch_url leaves files out: the default's
  assert.deepEqual(rulesFor(p, 'fetch_url').rules.files, { mode: 'audit', write: ['/tmp'] });
});

test('network.dns names resolvers (port 53 unless written); exec names programs, DIR/* or bare names', () => {
  const p = parsePolicy(
    `version: 1
tools:
  fetch_url:
    network: { mode: enforce, dns: [127.0.0.53, "10.0.0.2:5353", "[::1]:5300", "::1"] }
  run_shell:
    exec:
      mode: kill
      allow:
        - /bin/sh
        - df
        - /usr/libexec/x/*
`,
    'p.yaml',
  );
  assert.deepEqual(
    p.tools[0]!.rules.network?.dns.map((d) => [d.family, d.address, d.prefix, d.ports, d.protocol]),
    [
      [4, '127.0.0.53', 32, [{ from: 53, to: 53 }], 'any'],
      [4, '10.0.0.2', 32, [{ from: 5353, to: 5353 }], 'any'],
      [6, '::1', 128, [{ from: 5300, to: 5300 }], 'any'],
      [6, '::1', 128, [{ from: 53, to: 53 }], 'any'],
    ],
  );
  assert.deepEqual(p.tools[0]!.rules.network?.allow, [], 'allow may be left out');
  assert.deepEqual(p.tools[1]!.rules.exec, {
    mode: 'kill',
    allow: [
      { path: '/bin/sh', line: 9 },
      { path: 'df', line: 10 },
      { path: '/usr/libexec/x/*', line: 11 },
    ],
  });
  // run_shell names no network rule and fetch_url no exec rule: none (no default either)
  assert.deepEqual(rulesFor(p, 'run_shell').rules, { exec: p.tools[1]!.rules.exec });
});
