// The outside world of the examples, all on this machine: a weather service
// on 127.0.0.1 and a notes file. Every example's tools use the same one.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

/** Starts the world; `close()` stops the server and removes the file. */
export async function startWorld() {
  const server = http
    .createServer((_req, res) => res.end(JSON.stringify({ city: 'Lisbon', forecast: 'sunny', high: 24 })))
    .listen(0, '127.0.0.1');
  await once(server, 'listening');
  const notes = path.join(os.tmpdir(), `agentrace-example-notes-${process.pid}.txt`);
  fs.writeFileSync(notes, 'Pack sunglasses if the forecast is sunny.\n');
  return {
    weatherUrl: `http://127.0.0.1:${server.address().port}/forecast`,
    notes,
    close() {
      fs.rmSync(notes, { force: true });
      server.close();
    },
  };
}
