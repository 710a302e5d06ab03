// An MCP agent for bench/mcp.ts: a Client over StdioClientTransport (the
// server, bench/support/mcp-echo-server.mjs, spawned at connect), making
// `calls` tools/call one after the other after `warmup` untimed ones. Mode
// "traced" gives the client traceMcp(transport) (no ready()); mode "plain"
// leaves @agentrace/sdk unloaded. Prints one JSON line: the timed calls'
// wall time per call and the CPU the agent and the server spent on them.
//   node mcp-agent.mjs '{"mode", "server", "calls", "warmup"}'
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';

const plan = JSON.parse(process.argv[2]);
let transport = new StdioClientTransport({ command: process.execPath, args: [plan.server], env: getDefaultEnvironment(), stderr: 'inherit' });
let sdk;
if (plan.mode === 'traced') {
  sdk = await import('@agentrace/sdk');
  const { traceMcp } = await import('@agentrace/sdk/mcp');
  transport = traceMcp(transport);
}
const client = new Client({ name: 'bench-agent', version: '1.0.0' });
await client.connect(transport);

/** µs of CPU (user + system) a process has used, from /proc/PID/stat. */
function cpuUs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

const call = async () => {
  const r = await client.callTool({ name: 'echo', arguments: { word: 'hi' } });
  if (r.content[0].text !== 'hi') throw new Error(`echo answered ${JSON.stringify(r)}`);
};
for (let i = 0; i < plan.warmup; i++) await call();
const server0 = cpuUs(transport.pid);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < plan.calls; i++) await call();
const wallUs = (performance.now() - t0) * 1000;
const cpu = process.cpuUsage(cpu0);
const serverUs = cpuUs(transport.pid) - server0;
await client.close();
await sdk?.shutdown();
console.log(JSON.stringify({ wallUsPerCall: wallUs / plan.calls, agentCpuUsPerCall: (cpu.user + cpu.system) / plan.calls, serverCpuUsPerCall: serverUs / plan.calls }));
