// Runs the agentrace CLI under V8's CPU profiler, started by a first SIGUSR2
// and stopped (the profile written to OUT) by a second one. Not from
// start-up: the profiler's sampling signal would interrupt the BPF verifier
// while the probes load (which then fails with EAGAIN).
//   node profiled-sidecar.mjs OUT.cpuprofile CLI.js sidecar --socket PATH ...
import fs from 'node:fs';
import inspector from 'node:inspector';

const [out, cli, ...args] = process.argv.slice(2);
const session = new inspector.Session();
session.connect();
let state = 'idle';

process.on('SIGUSR2', () => {
  if (state === 'idle') {
    state = 'running';
    session.post('Profiler.enable', () => session.post('Profiler.start'));
  } else if (state === 'running') {
    state = 'done';
    session.post('Profiler.stop', (err, result) => {
      if (err) {
        process.stderr.write(`profiled-sidecar: ${err.message}\n`);
        return;
      }
      // Renamed into place, so the driver never reads half a file.
      fs.writeFileSync(`${out}.tmp`, JSON.stringify(result.profile));
      fs.renameSync(`${out}.tmp`, out);
    });
  }
});

process.argv = [process.argv[0], cli, ...args];
await import(cli);
