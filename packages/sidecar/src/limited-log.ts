// A log for what a flood could repeat (bad clients, a failing collector):
// its first lines are printed, the rest only counted elsewhere (the
// shutdown line), so a flood never becomes a flood of log lines.

/** Prints the first `max` lines given to it through `log`; the last one says that further ones are only counted. */
export function limitedLog(max: number, log: (line: string) => void, further: string): (line: string) => void {
  let n = 0;
  return (line) => {
    if (++n > max) return;
    log(n === max ? `${line} (${further} are only counted)` : line);
  };
}
