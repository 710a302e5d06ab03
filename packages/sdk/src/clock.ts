// Wall-clock timestamps as [seconds, nanoseconds], the way OpenTelemetry's
// HrTime is computed (performance.timeOrigin + performance.now()), so the
// times on the socket equal the times an app's TracerProvider records when
// given the same value.
import type { WireTime } from '@agentrace/protocol';

function millisToHr(ms: number): WireTime {
  const s = Math.trunc(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

const [originS, originNs] = millisToHr(performance.timeOrigin);

/** The current time since the Unix epoch. */
export function now(): WireTime {
  const t = performance.now();
  const sec = Math.trunc(t / 1000);
  let s = originS + sec;
  let ns = originNs + Math.round((t - sec * 1000) * 1e6);
  if (ns >= 1e9) {
    s += 1;
    ns -= 1e9;
  }
  return [s, ns];
}
