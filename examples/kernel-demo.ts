// A kernel-only demo of @agentrace/bpf: runs a command as a tracked process
// under one span and prints what it did, as a tree of processes.
//
//   pnpm demo                 a built-in workload: read a file, an HTTP request, a shell pipeline
//   pnpm demo -- CMD ARGS...  any command
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Probes, bpfUnavailableReason, type KernelEvent, type SocketAddress } from '@agentrace/bpf';

function peer(p: SocketAddress): string {
  if (p.family === 'inet') return `${p.address}:${p.port}`;
  if (p.family === 'inet6') return `[${p.address}]:${p.port}`;
  if (p.family === 'unix') return `unix:${p.abstract ? '@' : ''}${p.path}`;
  return `family ${p.familyNumber}`;
}

const shortArg = (a: string): string => {
  const one = a.replace(/\s+/g, ' ');
  return one.length > 48 ? `${one.slice(0, 45)}...` : one;
};
const errno = (ret: number): string => (ret >= 0 ? 'ok' : `-${-ret}`);
const us = (ns: bigint): string => `${(Number(ns) / 1000).toFixed(0)}µs`;

function line(e: KernelEvent): string {
  switch (e.kind) {
    case 'file.open':
      return `open    ${e.path}  ${e.ret >= 0 ? `fd=${e.ret}` : `error ${errno(e.ret)}`}  ${us(e.latencyNs)}`;
    case 'net.connect':
      return `connect ${peer(e.peer)}  ${e.ret === 0 ? 'ok' : e.ret === -115 ? 'in progress' : `error ${errno(e.ret)}`}  ${us(e.latencyNs)}`;
    case 'proc.exec':
      return `exec    ${e.filename}  [${e.args.map(shortArg).join(' ')}]${e.ret === 0 ? '' : `  error ${errno(e.ret)}`}`;
    case 'proc.fork':
      return `fork    -> pid ${e.childPid}`;
    case 'proc.exit':
      return `exit    ${e.signal ? `signal ${e.signal}` : `code ${e.exitCode}`}`;
    case 'dns.lookup':
      return `lookup  ${e.name}  ${e.ret === 0 ? 'ok' : `error ${e.ret}`}  ${us(e.latencyNs)}`;
    case 'dns.query':
      return `query   ${e.name ?? '?'} (${e.transport} port ${e.port})`;
    case 'proc.declare':
      return 'declare (registered a thread slot)';
    case 'runtime.exec':
      return 'node    (started a node: its threadpool gets hooked)';
    case 'policy.net':
      return `${e.op.padEnd(8)}${peer(e.peer)}  policy ${e.verdict}${e.unseen ? ' (no syscall seen)' : ''}${e.ret < 0 ? `  error ${errno(e.ret)}` : ''}`;
    case 'policy.file':
      return `open    ${e.path}  policy ${e.verdict} (${e.write ? 'write' : 'read'})`;
  }
}

function printTree(root: number, events: KernelEvent[]): void {
  const byPid = new Map<number, KernelEvent[]>();
  for (const e of events) byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
  const walk = (pid: number, depth: number): void => {
    const own = byPid.get(pid) ?? [];
    const pad = '  '.repeat(depth);
    const comm = own.find((e) => e.kind !== 'proc.exec')?.comm ?? '?';
    const span = own.find((e) => e.span)?.span;
    console.log(`${pad}pid ${pid} (${comm})${span ? `  span ${span.spanId}` : ''}`);
    for (const e of own) {
      console.log(`${pad}  ${line(e)}`);
      if (e.kind === 'proc.fork') walk(e.childPid, depth + 2);
    }
  };
  walk(root, 0);
}

async function main(): Promise<void> {
  const reason = bpfUnavailableReason();
  if (reason) {
    console.error(`agentrace demo: BPF is not usable here: ${reason}`);
    process.exit(1);
  }
  const dashdash = process.argv.indexOf('--');
  let command = dashdash >= 0 ? process.argv.slice(dashdash + 1) : [];
  let server: http.Server | undefined;
  if (command.length === 0) {
    server = http.createServer((_req, res) => res.end('hello from a local server\n')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const script = [
      "const fs = require('node:fs');",
      "fs.readFileSync('/etc/os-release');",
      `fetch('http://127.0.0.1:${port}/').then((r) => r.text()).then(() => {`,
      "  require('node:child_process').execSync('ls /usr | wc -l > /dev/null');",
      '});',
    ].join('\n');
    command = [process.execPath, '-e', script];
  }

  const probes = Probes.load();
  probes.attach('all');
  const events: KernelEvent[] = [];
  probes.onEvents((batch) => events.push(...batch));

  // The shell waits for a line, so it is tracked before it execs the command.
  const child = spawn('/bin/sh', ['-c', 'read _go; exec "$@"', 'sh', ...command], {
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  const pid = child.pid!;
  const span = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
  probes.track(pid);
  probes.setThreadSpan(pid, pid, span);
  console.log(`agentrace: tracing pid ${pid} under trace ${span.traceId} span ${span.spanId}`);
  console.log(`agentrace: ${command.map((a) => (a.includes('\n') ? '<script>' : a)).join(' ')}\n`);
  child.stdin.end('go\n');
  const [code] = (await once(child, 'exit')) as [number | null];
  await new Promise((r) => setTimeout(r, 100));
  probes.drain();
  const stats = probes.stats();
  probes.close();
  server?.close();

  printTree(pid, events);
  console.log(
    `\n${events.length} events; ${stats.ringbufDrops} lost to a full ring buffer; command exited with ${code}`,
  );
  process.exitCode = code ?? 1;
}

await main();
