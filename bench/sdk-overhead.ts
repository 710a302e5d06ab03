// Cost per tool call of @agentrace/sdk's traceTool next to a bare
// OpenTelemetry span, side by side in one run (interleaved rounds, medians):
//
//   plain call           fn itself, no tracing
//   bare OTel span       tracer.startActiveSpan(...) + span.end(), what an app
//                        would write by hand around fn
//   traceTool, no sidecar   the socket path does not exist
//   traceTool, sidecar      connected and welcomed to the real sidecar
//                        (`bin/agentrace sidecar`, started here, probes
//                        attached; needs root), or to the one AGENTRACE_SOCKET
//                        names; BENCH_SIDECAR=fake (or no BPF) uses a tiny
//                        in-process fake that answers welcome and discards bytes
//
// each without a TracerProvider (API only: the SDK makes its own spans) and
// with a BasicTracerProvider (spans recorded, no exporter), for a sync fn and
// an async fn (awaited one by one).
//
//   node --import tsx bench/sdk-overhead.ts        (ROUNDS=7 N=20000 by default)
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { configure, shutdown, traceTool } from '@agentrace/sdk';
import { state, whenReady } from '@agentrace/sdk/internal';
import { encodeFrame, FrameDecoder } from '@agentrace/sdk/protocol';
import { bpfUnavailableReason } from '@agentrace/bpf';
import { realSidecar } from './support/real-sidecar.js';



const ROUNDS = Number(process.env['ROUNDS'] ?? 7);
const N = Number(process.env['N'] ?? 20_000);
const BATCH = 200; // calls between event-loop turns, so a sidecar can drain the socket

/** Reads frames until hello, answers welcome, then only discards bytes. */
async function tinySidecar(): Promise<{ path: string; close: () => Promise<void>; bytes: () => number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentrace-bench-'));
  const sockPath = path.join(dir, 'sidecar.sock');
  let bytes = 0;
  const conns: net.Socket[] = [];
  const server = net.createServer((sock) => {
    conns.push(sock);
    const decoder = new FrameDecoder();
    let welcomed = false;
    sock.on('error', () => {});
    sock.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (welcomed) return;
      const msgs = decoder.push(chunk);
      if (msgs.some((m) => m.t === 'hello')) {
        welcomed = true;
        sock.write(encodeFrame({ t: 'welcome', pid: process.pid, sidecar: 'bench-sidecar' }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  return {
    path: sockPath,
    bytes: () => bytes,
    close: async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Provider = 'none' | 'basic';
type Mode = 'plain' | 'otel' | 'tool-nosidecar' | 'tool-sidecar';
const MODES: Mode[] = ['plain', 'otel', 'tool-nosidecar', 'tool-sidecar'];
const LABEL: Record<Mode, string> = {
  plain: 'plain call',
  otel: 'bare OTel span',
  'tool-nosidecar': 'traceTool, no sidecar',
  'tool-sidecar': 'traceTool, sidecar',
};

const work = (x: number): number => x + 1;
const workAsync = async (x: number): Promise<number> => x + 1;
// Fetched again after each provider switch (trace.disable() orphans old proxies).
let tracer = trace.getTracer('bench');
const toolSync = traceTool('bench_sync', work);
const toolAsync = traceTool('bench_async', workAsync);
const otelSync = (x: number): number =>
  tracer.startActiveSpan('execute_tool bench_sync', (span) => {
    try {
      return work(x);
    } finally {
      span.end();
    }
  });
const otelAsync = (x: number): Promise<number> =>
  tracer.startActiveSpan('execute_tool bench_async', async (span) => {
    try {
      return await workAsync(x);
    } finally {
      span.end();
    }
  });

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function measure(mode: Mode, async: boolean): Promise<number> {
  const fSync = mode === 'plain' ? work : mode === 'otel' ? otelSync : toolSync;
  const fAsync = mode === 'plain' ? workAsync : mode === 'otel' ? otelAsync : toolAsync;
  let sink = 0;
  let ns = 0n;
  for (let done = 0; done < N; done += BATCH) {
    const t0 = process.hrtime.bigint();
    if (async) for (let i = 0; i < BATCH; i++) sink += await fAsync(i);
    else for (let i = 0; i < BATCH; i++) sink += fSync(i);
    ns += process.hrtime.bigint() - t0;
    await turn();
  }
  if (sink < 0) console.log(sink);
  return Number(ns) / N;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const given = process.env['AGENTRACE_SOCKET'];
  const noBpf = given || process.env['BENCH_SIDECAR'] === 'fake' ? 'not asked for' : bpfUnavailableReason();
  const real = !given && noBpf === null ? await realSidecar() : undefined;
  const fake = given || real ? undefined : await tinySidecar();
  const sidecarPath = given ?? real?.path ?? fake!.path;
  const realSocket = given ?? real?.path;
  const missing = path.join(os.tmpdir(), `agentrace-bench-missing-${process.pid}.sock`);
  process.on('warning', () => {}); // the missing sidecar's one warning is expected
  // Same context manager for the bare spans as traceTool would register.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

  const providers: Provider[] = ['none', 'basic'];
  const results = new Map<string, number[]>();
  let dropped = 0;
  let sent = 0;
  for (let round = -1; round < ROUNDS; round++) {
    for (const provider of providers) {
      trace.disable();
      const basic = provider === 'basic' ? new BasicTracerProvider() : undefined;
      if (basic) trace.setGlobalTracerProvider(basic);
      tracer = trace.getTracer('bench');
      for (const mode of MODES) {
        if (mode === 'tool-nosidecar') configure({ socketPath: missing });
        if (mode === 'tool-sidecar') {
          configure({ socketPath: sidecarPath });
          if (!(await whenReady(3000))) throw new Error(`no welcome from the sidecar at ${sidecarPath}`);
        }
        const before = state();
        for (const async of [false, true]) {
          const v = await measure(mode, async);
          if (round >= 0) {
            const key = `${provider}|${mode}|${async}`;
            results.set(key, [...(results.get(key) ?? []), v]);
          }
        }
        if (mode === 'tool-sidecar' && round >= 0) {
          const after = state();
          dropped += after.framesDropped - before.framesDropped;
          sent += after.framesSent - before.framesSent;
        }
      }
      await basic?.shutdown();
    }
  }

  const fmt = (v: number, base: number): string => `${v.toFixed(0)} ns (x${(v / base).toFixed(2)})`;
  console.log(`node ${process.version}, ${N} calls x ${ROUNDS} rounds, medians; ratio to the bare OTel span`);
  console.log(`sidecar: ${realSocket ? `real, ${realSocket}` : `in-process fake (real sidecar: ${noBpf})`}`);
  for (const provider of providers) {
    console.log(`\nTracerProvider: ${provider === 'none' ? 'none (API only)' : 'BasicTracerProvider, no exporter'}`);
    console.log('| | sync fn | async fn |\n| --- | --- | --- |');
    const base = (async: boolean): number => median(results.get(`${provider}|otel|${async}`)!);
    for (const mode of MODES) {
      const s = median(results.get(`${provider}|${mode}|false`)!);
      const a = median(results.get(`${provider}|${mode}|true`)!);
      console.log(`| ${LABEL[mode]} | ${fmt(s, base(false))} | ${fmt(a, base(true))} |`);
    }
  }
  console.log(`\nwith the sidecar: ${sent} frames sent, ${dropped} dropped`);
  await shutdown();
  await fake?.close();
  await real?.close();
}

await main();
