// A stand-in for a model provider and the web, in its own process, for
// bench/agent-loop.ts. Prints one JSON line {"model", "web"} with its two
// origins, then serves until killed:
// - POST model/v1/chat/completions {"turn"}: after LATENCY ms (the model
//   thinking), the tool calls of that turn, or a final answer after the last.
// - GET web/page?q=: a 2 kB page (what a fetch tool reads).
//   node mock-model.mjs '{"latencyMs", "turns", "toolsPerTurn"}'
import http from 'node:http';
import { once } from 'node:events';

const { latencyMs, turns, toolsPerTurn } = JSON.parse(process.argv[2]);
const TOOLS = ['read_file', 'fetch_url', 'run_ls', 'write_note'];

function callsFor(turn) {
  const calls = [];
  for (let i = 0; i < toolsPerTurn; i++) calls.push({ id: `call_${turn}_${i}`, name: TOOLS[(turn * toolsPerTurn + i) % TOOLS.length], arguments: { n: turn } });
  return calls;
}

const model = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    const { turn } = JSON.parse(body || '{}');
    const answer = turn < turns ? { tool_calls: callsFor(turn) } : { content: `done after ${turns} turns` };
    setTimeout(() => {
      const out = JSON.stringify({ id: `chatcmpl-${turn}`, choices: [{ message: answer }] });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    }, latencyMs);
  });
});
const page = Buffer.alloc(2048, 'w');
const web = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': page.length }).end(page);
});
model.listen(0, '127.0.0.1');
web.listen(0, '127.0.0.1');
await Promise.all([once(model, 'listening'), once(web, 'listening')]);
const origin = (s) => `http://127.0.0.1:${s.address().port}`;
console.log(JSON.stringify({ model: origin(model), web: origin(web) }));
