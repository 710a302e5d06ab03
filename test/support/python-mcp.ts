// The Python the MCP tests run their Python server with: the venv
// scripts/setup.sh installs test/python/requirements.txt (the `mcp` package
// from PyPI) into.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The venv's python3. */
export const python = fileURLToPath(new URL('../python/.venv/bin/python3', import.meta.url));

let unusable: string | null | undefined;

/** Fails in CI (skips elsewhere) when the venv or its `mcp` package is missing. */
export function requirePythonMcp(t: { skip: (why: string) => void }): boolean {
  unusable ??= (() => {
    const r = spawnSync(python, ['-c', 'import mcp.server.mcpserver'], { encoding: 'utf8' });
    if (r.status === 0) return null;
    return `${python} cannot import the mcp package (${r.error?.message ?? r.stderr.trim().split('\n').at(-1)}): run scripts/setup.sh`;
  })();
  if (unusable === null) return true;
  if (process.env.CI === 'true') assert.fail(unusable);
  t.skip(unusable);
  return false;
}
