// A small agent with three tools, traced with @agentrace/sdk. A scripted
// "model" decides the tool calls; the outside world is a local HTTP server.
//
//   bin/agentrace run -- node examples/agent/agent.mjs
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { traceTool, shutdown } from '@agentrace/sdk';
import { startWorld } from '../support/world.mjs';

const world = await startWorld();
const { weatherUrl, notes } = world;

const tools = {
  read_file: traceTool('read_file', (file) => fs.promises.readFile(file, 'utf8'), {
    description: 'Read a text file from the local disk',
  }),
  fetch_url: traceTool('fetch_url', async (url) => (await fetch(url)).text(), {
    description: 'GET a URL and return the body',
  }),
  run_shell: traceTool(
    'run_shell',
    (command) =>
      new Promise((resolve, reject) => {
        execFile('/bin/sh', ['-c', command], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      }),
    { description: 'Run a shell command and return its output' },
  ),
};

// What a model would have asked for: one call, then two in parallel.
const forecast = JSON.parse(await tools.fetch_url(weatherUrl));
const [advice, disk] = await Promise.all([
  tools.read_file(notes),
  tools.run_shell('df -h / | tail -n 1'),
]);
console.log(`forecast for ${forecast.city}: ${forecast.forecast}, ${forecast.high}°C`);
console.log(`notes: ${advice.trim()}`);
console.log(`disk: ${disk.trim()}`);

world.close();
await shutdown();
