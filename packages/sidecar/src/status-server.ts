// The sidecar's HTTP endpoint for what watches it: Prometheus scrapes
// /metrics (the tools' kernel metrics and loss counters, in the exposition
// format of @opentelemetry/exporter-prometheus's serializer), and probes ask
// /readyz (serving agents: socket listening, context probes attached) and
// /healthz (ready, and every exporter working). An unhealthy or unready answer
// is 503 with one problem per line; ?verbose adds the probe groups.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { SidecarHealth } from './sidecar.js';
import { messageOf } from '@agentrace/protocol';

export interface StatusServerOptions {
  host: string;
  port: number;
  /** A cumulative collection, taken per scrape; undefined: /metrics is 404. */
  collect?: () => { resourceMetrics: ResourceMetrics; errors: Error[] };
  health: () => SidecarHealth;
  /** Told about a collection's errors (one line each). */
  log: (line: string) => void;
}

export class StatusServer {
  private constructor(
    private readonly server: http.Server,
    private readonly opts: StatusServerOptions,
    private readonly serializer: PrometheusSerializer,
  ) {}

  /** Listens on host:port; rejects with the errno (EADDRINUSE, EACCES) in the message. */
  static async listen(opts: StatusServerOptions): Promise<StatusServer> {
    // Loaded here, not with the sidecar: 60 ms of start-up for a sidecar (or
    // an `agentrace run`) that serves no /metrics.
    const { PrometheusSerializer } = await import('@opentelemetry/exporter-prometheus');
    const server = http.createServer();
    const status = new StatusServer(server, opts, new PrometheusSerializer());
    server.on('request', (req, res) => status.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`cannot serve /metrics and /healthz on ${opts.host}:${opts.port}: ${err.code ?? err.message}`, { cause: err })),
      );
      server.listen(opts.port, opts.host, () => resolve());
    });
    // keep-alive scrapes must not hold the process at exit
    server.unref();
    return status;
  }

  /** e.g. http://127.0.0.1:9464 */
  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://sidecar');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only\n');
      return;
    }
    try {
      if (url.pathname === '/metrics' && this.opts.collect) return this.metrics(res);
      if (url.pathname === '/healthz' || url.pathname === '/readyz') return this.health(url, res);
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; try ${this.opts.collect ? '/metrics, ' : ''}/healthz or /readyz\n`);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${messageOf(err)}\n`);
    }
  }

  private metrics(res: http.ServerResponse): void {
    const collection = this.opts.collect!();
    for (const err of collection.errors) this.opts.log(`metrics: ${err.message}`);
    const body = this.serializer.serialize(collection.resourceMetrics);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
  }

  private health(url: URL, res: http.ServerResponse): void {
    const h = this.opts.health();
    const ok = url.pathname === '/readyz' ? h.ready : h.healthy;
    const problems = url.pathname === '/readyz' && h.ready ? [] : h.problems;
    const lines = ok ? ['ok'] : problems;
    if (url.searchParams.has('verbose')) {
      for (const [group, attached] of Object.entries(h.probes)) lines.push(`probes ${group}: ${attached ? 'attached' : 'detached'}`);
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(`${lines.join('\n')}\n`);
  }
}
