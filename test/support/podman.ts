// Containers for real, with podman (see ../shared/PLATFORM.md): the sidecar
// image built from this checkout, Kubernetes manifests played as pods. In CI
// (CI=true) a podman that cannot run fails the test; elsewhere it is skipped.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export const SIDECAR_IMAGE = 'localhost/agentrace-sidecar:test';
/** The base build-image.sh --debian-base makes: Node 24 on Debian's glibc. */
const BASE_IMAGE = 'localhost/agentrace-base:bookworm-node24';
/** What agents run on: that base with its node and libc copied into a layer of their own. */
export const AGENT_IMAGE = 'localhost/agentrace-test-agent:node24';

// Containers of one image share their base layer's files, to the inode: a
// sidecar that hooked its own node and libc would have hooked such an
// agent's too, and never shown that it hooks what the agent runs. Users'
// agents run on images of their own; so does this one.
const AGENT_CONTAINERFILE = `FROM ${BASE_IMAGE}
COPY own-files.cjs /tmp/
RUN ["node", "/tmp/own-files.cjs"]
`;
const OWN_FILES = `const fs = require('fs');
const libc = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/ +/)[5]).find((p) => /libc[.]so[.]6$/.test(p || ''));
for (const f of [process.execPath, libc]) {
  fs.copyFileSync(f, f + '.own');
  fs.chmodSync(f + '.own', 0o755);
  fs.renameSync(f + '.own', f);
}
fs.rmSync(__filename);
`;

// This machine's kernel refuses crun's cgroup handling and podman's default
// ulimits (PLATFORM.md); runc and explicit limits work.
const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
`;

let confDir: string | undefined;
function env(): NodeJS.ProcessEnv {
  if (!confDir) {
    confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-podman-'));
    fs.writeFileSync(path.join(confDir, 'containers.conf'), CONTAINERS_CONF);
    process.once('exit', () => fs.rmSync(confDir!, { recursive: true, force: true }));
  }
  return { ...process.env, CONTAINERS_CONF: path.join(confDir, 'containers.conf') };
}

let unusable: string | null | undefined;
function podmanUnusableReason(): string | null {
  for (const tool of ['podman', 'mmdebstrap']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore', env: env() });
    } catch {
      return `${tool} is not installed (scripts/setup.sh installs it)`;
    }
  }
  if (process.getuid?.() !== 0) return 'rootful podman is needed (the sidecar loads BPF)';
  return null;
}

/** Returns true when the test may go on; otherwise skips it (or fails it in CI). */
export function requirePodman(t: TestContext): boolean {
  unusable ??= podmanUnusableReason();
  if (unusable === null) return true;
  if (process.env.CI === 'true') assert.fail(`podman is required in CI but unusable: ${unusable}`);
  t.skip(unusable);
  return false;
}

export async function podman(...args: string[]): Promise<string> {
  try {
    return (await run('podman', args, { env: env(), maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`podman ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

let built: Promise<void> | undefined;
/** Builds the sidecar image (and its Debian base) from this checkout, and the agents' image, once per test run. */
export function buildImages(): Promise<void> {
  built ??= (async () => {
    await run(path.join(repoRoot, 'deploy/build-image.sh'), ['--debian-base', '--tag', SIDECAR_IMAGE], {
      env: env(),
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`deploy/build-image.sh failed: ${err.stderr?.trim() || err.message}`);
    });
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-agent-image-'));
    try {
      fs.writeFileSync(path.join(ctx, 'Containerfile'), AGENT_CONTAINERFILE);
      fs.writeFileSync(path.join(ctx, 'own-files.cjs'), OWN_FILES);
      const previous = (await podman('images', '--quiet', '--no-trunc', AGENT_IMAGE)).trim();
      await podman('build', '--quiet', '-t', AGENT_IMAGE, ctx);
      // The last run's, now nameless: gone unless a container uses it.
      if (previous && previous !== (await podman('images', '--quiet', '--no-trunc', AGENT_IMAGE)).trim()) await podman('rmi', previous).catch(() => undefined);
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
  })();
  return built;
}

// --- manifests ------------------------------------------------------------

export type Manifest = Record<string, any>;

export function readManifests(file: string): Manifest[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(repoRoot, file), 'utf8')).map((d) => d.toJS() as Manifest);
}

/** The pod a Deployment or DaemonSet controller would make from its template. */
export function podOf(workload: Manifest, name: string, namespace: string): Manifest {
  const template = workload.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: template.metadata?.labels ?? {} },
    spec: structuredClone(template.spec),
  };
}

export function container(pod: Manifest, name: string): Manifest {
  const c = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].find((x: Manifest) => x.name === name);
  assert.ok(c, `the manifest has a container ${name}`);
  return c;
}

/**
 * What the kubelet does and podman kube play (4.3) does not, done to the
 * manifest so podman runs what Kubernetes would:
 * - native sidecars (init containers with restartPolicy: Always) become
 *   containers; `startInOrder` then starts them first and waits for their
 *   startupProbe;
 * - the downward API fields podman lacks (metadata.namespace, spec.nodeName)
 *   become their values;
 * - $(VAR) references in env values are expanded from the variables before
 *   them, as the kubelet does.
 */
export function asKubelet(pod: Manifest, nodeName: string): { pod: Manifest; sidecars: string[] } {
  const p = structuredClone(pod);
  const sidecars = (p.spec.initContainers ?? []).filter((c: Manifest) => c.restartPolicy === 'Always');
  p.spec.initContainers = (p.spec.initContainers ?? []).filter((c: Manifest) => c.restartPolicy !== 'Always');
  if (p.spec.initContainers.length === 0) delete p.spec.initContainers;
  p.spec.containers = [...sidecars.map((c: Manifest) => ({ ...c, restartPolicy: undefined })), ...p.spec.containers];
  for (const c of p.spec.containers) {
    delete c.restartPolicy;
    const values = new Map<string, string>();
    for (const e of c.env ?? []) {
      const field = e.valueFrom?.fieldRef?.fieldPath;
      if (field === 'metadata.namespace') e.value = p.metadata.namespace;
      else if (field === 'spec.nodeName') e.value = nodeName;
      else if (field === 'metadata.name') e.value = p.metadata.name;
      if (e.value !== undefined) {
        delete e.valueFrom;
        e.value = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m: string, v: string) => values.get(v) ?? m);
        values.set(e.name, e.value);
      }
    }
  }
  return { pod: p, sidecars: sidecars.map((c: Manifest) => c.name) };
}

/** A pod played with podman kube play; containers are named <pod>-<container>. */
export class PlayedPod {
  private constructor(
    readonly name: string,
    private readonly file: string | undefined,
  ) {}

  /**
   * Creates the pod without starting it, on podman's default bridge network
   * (with --network none, podman 4.3 drops the pod's hostAliases).
   */
  static async create(dir: string, pod: Manifest): Promise<PlayedPod> {
    assert.ok(!pod.spec.hostPID, 'podman kube play ignores hostPID: use PlayedPod.hostPid');
    const file = path.join(dir, `${pod.metadata.name}.yaml`);
    fs.writeFileSync(file, YAML.stringify(pod));
    await podman('kube', 'play', '--start=false', file);
    return new PlayedPod(pod.metadata.name, file);
  }

  /**
   * A one-container pod with hostPID: true, which podman kube play (4.3)
   * ignores: its container created with podman create --pid=host, the rest
   * as the manifest says (capabilities, hostPath mounts, env, args).
   */
  static async hostPid(pod: Manifest): Promise<PlayedPod> {
    assert.equal(pod.spec.hostPID, true);
    assert.equal(pod.spec.containers.length, 1, 'one container');
    const c = pod.spec.containers[0];
    const args = ['create', '--name', `${pod.metadata.name}-${c.name}`, '--pid=host', '--network=none'];
    const caps = c.securityContext?.capabilities ?? {};
    for (const cap of caps.drop ?? []) args.push(`--cap-drop=${cap}`);
    for (const cap of caps.add ?? []) args.push(`--cap-add=${cap}`);
    for (const m of c.volumeMounts ?? []) {
      const v = pod.spec.volumes.find((x: Manifest) => x.name === m.name);
      assert.ok(v?.hostPath, `volume ${m.name} is a hostPath (the only kind this emulation mounts)`);
      if (v.hostPath.type === 'DirectoryOrCreate') fs.mkdirSync(v.hostPath.path, { recursive: true });
      args.push('-v', `${v.hostPath.path}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
    }
    for (const e of c.env ?? []) {
      assert.ok(e.value !== undefined, `env ${e.name} has a value (asKubelet first)`);
      args.push('-e', `${e.name}=${e.value}`);
    }
    if (c.command) args.push('--entrypoint', JSON.stringify(c.command));
    args.push(c.image, ...(c.args ?? []));
    await podman(...args);
    return new PlayedPod(pod.metadata.name, undefined);
  }

  ctr(name: string): string {
    return `${this.name}-${name}`;
  }

  async start(name: string): Promise<void> {
    await podman('start', this.ctr(name));
  }

  /** Starts a container and waits until its startupProbe's command succeeds. */
  async startReady(pod: Manifest, name: string, timeoutMs = 30_000): Promise<void> {
    await this.start(name);
    const probe: string[] | undefined = container(pod, name).startupProbe?.exec?.command;
    assert.ok(probe, `${name} has an exec startupProbe`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await podman('exec', this.ctr(name), ...probe);
        await this.checkReadiness(pod, name);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${name} never got ready: ${(err as Error).message}\n${await this.logs(name)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * A readinessProbe's httpGet, asked from inside the container (the image's
   * node fetches it: the pod has no network the test can reach). Throws
   * unless it answers 200.
   */
  private async checkReadiness(pod: Manifest, name: string): Promise<void> {
    const c = container(pod, name);
    const get = c.readinessProbe?.httpGet;
    if (get === undefined) return;
    const port = typeof get.port === 'number' ? get.port : (c.ports ?? []).find((p: Manifest) => p.name === get.port)?.containerPort;
    assert.ok(Number.isInteger(port), `${name}: readinessProbe port ${JSON.stringify(get.port)} is a number or a named containerPort`);
    const url = `http://127.0.0.1:${port}${get.path ?? '/'}`;
    const script = `fetch(${JSON.stringify(url)}).then(async (r) => { process.stdout.write(r.status + ' ' + (await r.text())); process.exit(r.status === 200 ? 0 : 1); }, (e) => { console.error(e.message); process.exit(1); })`;
    await podman('exec', this.ctr(name), 'node', '-e', script);
  }

  /** Waits for a container to exit; returns its exit code. */
  async wait(name: string): Promise<number> {
    return Number((await podman('wait', this.ctr(name))).trim());
  }

  async logs(name: string): Promise<string> {
    try {
      const { stdout, stderr } = await run('podman', ['logs', this.ctr(name)], { env: env(), maxBuffer: 64 * 1024 * 1024 });
      return stdout + stderr;
    } catch (err) {
      return `(no logs: ${(err as Error).message})`;
    }
  }

  async id(name: string): Promise<string> {
    return (await podman('inspect', '--format', '{{.Id}}', this.ctr(name))).trim();
  }

  /** SIGTERM, then up to `seconds` for it to exit (the sidecar flushes its exports). */
  async stop(name: string, seconds = 20): Promise<void> {
    await podman('stop', '--time', String(seconds), this.ctr(name));
  }

  async remove(): Promise<void> {
    if (this.file === undefined) {
      await podman('rm', '--force', '--ignore', '--time', '0', ...(await this.containers())).catch(() => undefined);
      return;
    }
    await podman('kube', 'down', this.file).catch(() => undefined);
    await podman('pod', 'rm', '--force', '--ignore', this.name).catch(() => undefined);
  }

  private async containers(): Promise<string[]> {
    const out = await podman('ps', '--all', '--format', '{{.Names}}', '--filter', `name=^${this.name}-`);
    return out.split('\n').filter(Boolean);
  }
}
