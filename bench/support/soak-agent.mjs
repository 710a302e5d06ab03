// An agent for bench/soak.ts, written as users write them (no ready(), no
// TracerProvider: the sidecar exports its tool spans).
//   fast:   CONCURRENCY loops calling a tool that does nothing, as fast as
//           they can (yielding to the event loop every 8 calls), for SECONDS.
//   normal: one call every 100 ms for SECONDS, each opening its own file
//           (DIR/note-<i>), so every call can be found in the export.
// Prints one JSON line at the end: {"calls"}.
//   node soak-agent.mjs '{"mode","seconds","dir","concurrency"}'
import fs from 'node:fs/promises';
import { traceTool, shutdown } from '@agentrace/sdk';

const plan = JSON.parse(process.argv[2]);
const until = Date.now() + plan.seconds * 1000;
let calls = 0;

if (plan.mode === 'fast') {
  const lookup = traceTool('fast_lookup', async (i) => i + 1);
  const loop = async () => {
    for (let i = 0; ; i++) {
      // Real tools do I/O: the event loop turns (and the SDK's socket is
      // written) every few calls, not only when the loops end.
      if ((i & 7) === 0) {
        await new Promise((r) => setImmediate(r));
        if (Date.now() >= until) return;
      }
      await lookup(i);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, loop));
} else {
  const readNote = traceTool('read_note', async (i) => (await fs.readFile(`${plan.dir}/note-${i}`, 'utf8')).length);
  for (let i = 0; Date.now() < until; i++) {
    await fs.writeFile(`${plan.dir}/note-${i}`, `note ${i}\n`);
    await readNote(i);
    calls++;
    await new Promise((r) => setTimeout(r, 100));
  }
}
await shutdown();
console.log(JSON.stringify({ calls }));
