import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import type { Command } from 'commander';
import { configSchema } from '../config/schema.js';
import { dashboardRoutes } from '../dashboard/wire.js';
import { TRAIN_DEFAULTS, trainBundle } from '../detector/train.js';
import { readInputs } from '../ingest/files.js';
import { type LiveService, startLiveService } from '../service.js';
import { exampleScenario } from '../sim/examples.js';
import { publishSimulation } from '../sim/publish.js';
import type { AnomalyEvent } from '../stream/types.js';
import { createLogger } from './logger.js';
import { integer, number } from './options.js';
import { stopOnSignal } from './run.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

interface DemoOptions {
  broker?: string;
  model: string;
  train: boolean;
  duration?: number;
  seed: number;
  speed: number;
  port: number;
  dashboard: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'everything on one machine: embedded broker, simulated observatories, live detector, dashboard',
    )
    .option('--broker <url>', 'use this MQTT broker instead of the embedded one')
    .option('--model <dir>', 'model bundle for the example network', join(EXAMPLES, 'model'))
    .option('--train', 'train a fresh bundle on the example normal data first (about a minute)', false)
    .option('--duration <s>', 'stop after this many seconds (default: at Ctrl-C)', integer('--duration', 1))
    .option('--seed <n>', 'moves the injected anomalies in time', integer('--seed', 0), 1)
    .option(
      '--speed <x>',
      'data seconds per wall-clock second',
      number('--speed', (x) => x > 0, 'a number > 0'),
      32,
    )
    .option('--port <n>', 'dashboard and metrics port (0: a free one)', integer('--port', 0), 8080)
    .option('--no-dashboard', 'do not serve the dashboard')
    .action(async (options: DemoOptions) => runDemo(options));
}

const time = (iso: string) => iso.slice(11, 19);

/** One line per event, readable at a glance: when, what, where, and which channels carried the vote. */
export function describeEvent(event: AnomalyEvent): string {
  const groups = event.scope === 'global' && event.groups ? `, ${event.groups.join('+')}` : '';
  const where = event.sensor ? `sensor ${event.sensor}` : `${event.group} (${event.scope}${groups})`;
  const when = event.end ? `${time(event.start)}-${time(event.end)}` : time(event.start);
  const votes = event.peakVotes !== undefined ? ` votes ${event.peakVotes}/${event.requiredVotes}` : '';
  const channels = event.channels
    .slice(0, 6)
    .map((c) => `${c.channel} ${c.rmse === null ? '-' : c.rmse.toFixed(1)}>${c.threshold.toFixed(2)}`)
    .join(', ');
  const more = event.channels.length > 6 ? ` and ${event.channels.length - 6} more` : '';
  return `${event.event.padEnd(15)} ${where} at ${when}${votes}${channels ? `: ${channels}${more}` : ''}`;
}

async function startEmbeddedBroker(): Promise<{ url: string; close(): Promise<void> }> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function runDemo(options: DemoOptions): Promise<void> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const scratch = await mkdtemp(join(tmpdir(), 'magwatch-demo-'));
  const embedded = options.broker ? undefined : await startEmbeddedBroker();
  const url = options.broker ?? embedded!.url;
  let service: LiveService | undefined;
  try {
    let model = options.model;
    if (options.train) {
      out('training a bundle on examples/normal.csv ...');
      model = join(scratch, 'model');
      const table = await readInputs([join(EXAMPLES, 'normal.csv')]);
      const summary = await trainBundle(table, model, {
        ...TRAIN_DEFAULTS,
        step: TRAIN_DEFAULTS.window,
        shared: true,
        inputs: ['examples/normal.csv'],
      });
      const { exportBundleOnnx } = await import('../detector/onnx/export.js');
      await exportBundleOnnx(model);
      out(`trained in ${summary.seconds.toFixed(1)} s`);
    }

    const config = configSchema.parse({
      mqtt: { url, clientId: `magwatch-demo-${process.pid}`, clean: true },
      model: { path: model },
      // Simulated data runs `speed` times faster than the clock; lateness and silence are clock times.
      stream: { bucketMs: 1000, maxGapMs: 10_000, latenessMs: 2000, silentAfterMs: 10_000 },
      influx: { file: join(scratch, 'points.lp') },
      http: { enabled: options.dashboard, port: options.port },
      dashboard: { enabled: options.dashboard },
      log: { level: 'warn' },
    });
    const logger = createLogger('warn', process.stderr);
    service = await startLiveService(config, logger, {
      ...(options.dashboard ? { routes: (s) => dashboardRoutes(s, { title: 'magwatch demo' }) } : {}),
      onEvent: (event) => out(describeEvent(event)),
    });
    out(
      `magwatch demo: broker ${url}, model ${model}, engine ${service.engine.name}/${service.engine.backend}`,
    );
    if (service.http) out(`dashboard: ${service.http.url}/`);

    const abort = new AbortController();
    const dataSeconds = Math.ceil((options.duration ?? 24 * 3600) * options.speed);
    const publishing = publishSimulation(exampleScenario({ durationS: dataSeconds, seed: options.seed }), {
      url,
      realtime: true,
      speed: options.speed,
      signal: abort.signal,
      onAnomaly: (label) =>
        out(
          `injected        ${label.kind} on ${label.sensors.join(' ')} (${label.components.join(' ')}) at ${time(new Date(label.start).toISOString())}`,
        ),
    });
    const running = service;
    // Ctrl-C stops at any time; otherwise the run ends when the simulation has been published and received.
    const finished = publishing.then(async ({ messages }) => {
      const deadline = Date.now() + 2000;
      while (running.ingest.counters().messages < messages && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await running.stop();
    });
    await Promise.race([finished, stopOnSignal(running, logger)]);
    abort.abort();
    await publishing.catch(() => {});
    const stats = running.detector.stats();
    out(
      `demo finished: ${stats.samples} samples, ${stats.windowsScored} windows scored, ${stats.events} events`,
    );
  } finally {
    await service?.stop();
    await embedded?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
