#!/usr/bin/env node
/**
 * Soak benchmark of the live detector (not part of the test run): N minutes at a fixed sample rate through a
 * real mosquitto and a real influxd, with a broker restart at 40 % of the run and an InfluxDB outage from 60 %,
 * then a summary: samples in, processed and dropped, events, points written and dropped, recovery times and RSS.
 *
 *   npm run build && node scripts/soak.mjs [--minutes 10] [--rate 10000] [--batch 100] [--outage-s 20]
 *                                          [--bundle examples/model] [--engine auto]
 *
 * magwatch runs as `magwatch run` in its own process, so that its inference never slows the feed down; its
 * counters come from /metrics while it runs and from its `magwatch stopped` line after SIGTERM. The three sensors
 * of the example bundle publish `{"samples": [...]}` batches at QoS 1; each sensor's data time advances 1 ms per
 * sample, so windows come due at the rate the samples arrive. Needs /usr/sbin/mosquitto and influxd; everything
 * listens on 127.0.0.1 and is removed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '100' },
    'outage-s': { type: 'string', default: '20' },
    bundle: { type: 'string', default: 'examples/model' },
    engine: { type: 'string', default: 'auto' },
  },
});
const DURATION_MS = Number(args.minutes) * 60_000;
const RATE = Number(args.rate);
const BATCH = Number(args.batch);
const OUTAGE_MS = Number(args['outage-s']) * 1000;
const SENSORS = [
  { id: 'S1_OBS1_1', base: [19_724, 1_395.6, 44_529.9] },
  { id: 'S2_OBS1_2', base: [19_728.4, 1_394.6, 44_533.5] },
  { id: 'S3_OBS2_1', base: [19_690, 1_402, 44_560] },
];
const TICK_MS = 10;
/** RSS before this many seconds of feed is warm-up: buffers, JIT code and inference arenas growing to size. */
const WARM_UP_S = 60;
/** Longest wait after the feed ends for the service to take in every sample. */
const CATCH_UP_MS = 180_000;

const dir = await mkdtemp(join(tmpdir(), 'magwatch-soak-'));
const children = [];
const lines = [];
const log = (message) => process.stderr.write(`soak: ${message}\n`);

try {
  const brokerPort = await freePort();
  const broker = await startProcess('/usr/sbin/mosquitto', ['-c', await mosquittoConfig(brokerPort)], () =>
    accepts(brokerPort),
  );
  const influxPort = await freePort();
  const influxConfig = await influxdConfig(influxPort, await freePort());
  const influxd = await startProcess('influxd', ['run', '-config', influxConfig], () => pings(influxPort));
  const influxUrl = `http://127.0.0.1:${influxPort}`;

  const httpPort = await freePort();
  const configPath = join(dir, 'magwatch.yaml');
  await writeFile(
    configPath,
    [
      'mqtt:',
      `  url: mqtt://127.0.0.1:${brokerPort}`,
      '  clientId: magwatch-soak',
      '  clean: false',
      'model:',
      `  path: ${resolve(args.bundle)}`,
      `  engine: ${args.engine}`,
      'influx:',
      `  url: ${influxUrl}/soak`,
      'http:',
      `  port: ${httpPort}`,
    ].join('\n'),
  );
  const magwatch = spawn(process.execPath, [resolve('bin/magwatch.js'), 'run', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(magwatch);
  let pending = '';
  magwatch.stdout.on('data', (chunk) => {
    pending += chunk;
    const complete = pending.split('\n');
    pending = complete.pop();
    for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line));
  });
  const exited = new Promise((r) => magwatch.on('close', r));
  await waitUntil(() => lines.some((l) => l.msg === 'magwatch started'), 60_000);
  const metrics = async () => {
    const text = await (
      await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })
    ).text();
    const value = (name) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    return {
      samples: value('magwatch_ingest_samples_total'),
      connected: value('magwatch_broker_connected') === 1,
      rss: value('magwatch_process_resident_memory_bytes'),
      heapTotal: value('magwatch_nodejs_heap_size_total_bytes'),
      heapUsed: value('magwatch_nodejs_heap_size_used_bytes'),
      external: value('magwatch_nodejs_external_memory_bytes'),
      events: value('magwatch_events_total'),
    };
  };
  const rssStart = (await metrics()).rss;
  let rssMax = rssStart;
  /**
   * [seconds since the feed started, RSS, V8 heap total, heap used, external memory], bytes, every scrape:
   * flatness is judged on RSS after warm-up; the heap figures say where a change of RSS lives.
   */
  const rssSeries = [];
  const publisher = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
    clientId: 'magwatch-soak-publisher',
    clean: false,
    reconnectPeriod: 200,
  });

  const dataStart = Date.now() - 2 * 3_600_000;
  const next = SENSORS.map(() => 0);
  let published = 0;
  let unacknowledged = 0;
  const started = Date.now();
  const recovery = {};
  let phase = 'steady';
  let lastScrape = 0;
  log(
    `${args.minutes} min at ${RATE} samples/s in batches of ${BATCH}; broker restart at 40 %, InfluxDB outage of ${OUTAGE_MS / 1000} s at 60 %`,
  );

  while (Date.now() - started < DURATION_MS) {
    const elapsed = Date.now() - started;
    const due = Math.floor((elapsed * RATE) / 1000 / SENSORS.length);
    for (const [index, sensor] of SENSORS.entries()) {
      while (next[index] + BATCH <= due) {
        const samples = [];
        for (let i = 0; i < BATCH; i++) {
          const n = next[index] + i;
          const ripple = Math.sin(n / 5000) * 3;
          samples.push({
            ts: dataStart + n,
            b_x: sensor.base[0] + ripple + (Math.random() - 0.5) * 0.4,
            b_y: sensor.base[1] + ripple / 2 + (Math.random() - 0.5) * 0.4,
            b_z: sensor.base[2] - ripple + (Math.random() - 0.5) * 0.4,
          });
        }
        next[index] += BATCH;
        published += BATCH;
        unacknowledged++;
        publisher.publish(
          `magwatch/raw/${sensor.id}`,
          JSON.stringify({ samples }),
          { qos: 1 },
          () => unacknowledged--,
        );
      }
    }
    if (phase === 'steady' && elapsed > DURATION_MS * 0.4) {
      phase = 'broker';
      log('restarting the broker');
      await broker.halt();
      await broker.resume();
      const back = Date.now();
      waitUntil(async () => (await metrics().catch(() => ({}))).connected).then(() => {
        recovery.brokerReconnectMs = Date.now() - back;
      });
    } else if (phase === 'broker' && elapsed > DURATION_MS * 0.6) {
      phase = 'influx';
      log(`stopping InfluxDB for ${OUTAGE_MS / 1000} s`);
      await influxd.halt();
      setTimeout(async () => {
        const recoveredBefore = lines.filter((l) => l.msg === 'influxdb recovered').length;
        await influxd.resume();
        const back = Date.now();
        log('InfluxDB is back');
        waitUntil(() => lines.filter((l) => l.msg === 'influxdb recovered').length > recoveredBefore).then(
          () => {
            recovery.influxRecoverMs = Date.now() - back;
          },
        );
      }, OUTAGE_MS);
    }
    if (Date.now() - lastScrape > 5000) {
      lastScrape = Date.now();
      metrics().then(
        (m) => {
          rssMax = Math.max(rssMax, m.rss);
          rssSeries.push([(Date.now() - started) / 1000, m.rss, m.heapTotal, m.heapUsed, m.external]);
        },
        () => {},
      );
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }

  log('publishing done; waiting for the service to catch up');
  const publishedAt = Date.now();
  // A service slower than the feed is a finding, not a failure: report how far behind it still was.
  const caughtUp = await waitUntil(
    async () => unacknowledged === 0 && (await metrics().catch(() => ({ samples: 0 }))).samples >= published,
    CATCH_UP_MS,
  ).then(
    () => true,
    () => false,
  );
  const catchUpMs = Date.now() - publishedAt;
  const atEnd = await metrics();
  const rssEnd = atEnd.rss;
  rssMax = Math.max(rssMax, rssEnd);
  magwatch.kill('SIGTERM');
  const exitCode = await exited;
  const stopped = lines.find((l) => l.msg === 'magwatch stopped') ?? {};
  const closed = lines.find((l) => l.msg === 'mqtt ingest closed') ?? {};
  const ingest = { samples: closed.samples, invalid: closed.invalid, reconnects: closed.reconnects };
  const count = async (measurement, field) => {
    const q = new URLSearchParams({ db: 'soak', q: `SELECT count("${field}") FROM "${measurement}"` });
    const body = await (await fetch(`${influxUrl}/query?${q}`)).json();
    return body.results[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
  };
  const stored = {
    rmse: await count('magwatch_rmse', 'rmse'),
    votes: await count('magwatch_votes', 'votes'),
    events: await count('magwatch_events', 'id'),
  };
  const summary = {
    minutes: Number(args.minutes),
    rate: RATE,
    wallS: Math.round((Date.now() - started) / 1000),
    samples: {
      published,
      in: ingest.samples,
      lost: published - ingest.samples,
      processed: stopped.accepted === undefined ? undefined : stopped.accepted / 3,
      dropped: stopped.dropped,
      invalid: ingest.invalid,
      reconnects: ingest.reconnects,
    },
    windows: {
      due: stopped.windows,
      scored: stopped.windowsScored,
      batches: stopped.batches,
      inferenceMs: stopped.inferenceMs,
    },
    events: { emitted: atEnd.events, mqtt: stopped.mqttEvents },
    exitCode,
    points: { ...stopped.points, storedInInflux: stored },
    recovery: { ...recovery, caughtUp, catchUpAfterFeedMs: catchUpMs },
    rssMiB: { start: mib(rssStart), end: mib(rssEnd), max: mib(rssMax), ...flatness(rssSeries) },
    warnings: lines.filter((l) => l.level >= 40).map((l) => l.msg),
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  await publisher.endAsync(true);
  await influxd.halt();
  await broker.halt();
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}

/**
 * RSS after warm-up (from the first scrape past WARM_UP_S, when buffers, JIT code and the engine's arenas have
 * grown to their working size) to the end: the spread between its lowest and highest value, relative to the
 * first, and the series every 30 s in MiB.
 */
function flatness(series) {
  const steady = series.filter(([at]) => at >= WARM_UP_S).map(([, rss]) => rss);
  const every30s = series.filter(
    ([at], i) => i === 0 || Math.floor(at / 30) > Math.floor(series[i - 1][0] / 30),
  );
  // Every 30 s: [s, RSS, heap total, heap used, external] in MiB.
  const table = every30s.map(([at, ...bytes]) => [Math.round(at), ...bytes.map(mib)]);
  if (steady.length === 0) return { series: table };
  const first = steady[0];
  return {
    afterWarmUp: {
      fromS: WARM_UP_S,
      first: mib(first),
      last: mib(steady.at(-1)),
      min: mib(Math.min(...steady)),
      max: mib(Math.max(...steady)),
      spreadPercent: Math.round((1000 * (Math.max(...steady) - Math.min(...steady))) / first) / 10,
    },
    series: table,
  };
}

function mib(bytes) {
  return Math.round(bytes / 1048576);
}

async function waitUntil(condition, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('soak: timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server process that can be halted and resumed on the same ports and data. */
async function startProcess(binary, argv, ready) {
  let child;
  const launch = async () => {
    child = spawn(binary, argv, { stdio: 'ignore' });
    children.push(child);
    await waitUntil(ready, 30_000);
  };
  await launch();
  return {
    async halt() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    resume: launch,
  };
}

async function mosquittoConfig(port) {
  const path = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    // The broker restart queues a few seconds of samples for magwatch's session: more than the default 1000.
    'max_queued_messages 1000000',
    'max_inflight_messages 100',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
  ];
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

async function influxdConfig(port, rpcPort) {
  const path = join(dir, 'influxdb.conf');
  await writeFile(
    path,
    `reporting-enabled = false\nbind-address = "127.0.0.1:${rpcPort}"\n[meta]\n  dir = "${dir}/meta"\n  logging-enabled = false\n` +
      `[data]\n  dir = "${dir}/data"\n  wal-dir = "${dir}/wal"\n  query-log-enabled = false\n[monitor]\n  store-enabled = false\n` +
      `[subscriber]\n  enabled = false\n[continuous_queries]\n  enabled = false\n[http]\n  enabled = true\n` +
      `  bind-address = "127.0.0.1:${port}"\n  log-enabled = false\n[logging]\n  level = "error"\n  suppress-logo = true\n`,
  );
  return path;
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolveAccept) => {
    const socket = connectTcp({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolveAccept(true);
    });
    socket.once('error', () => resolveAccept(false));
  });
}

async function pings(port) {
  try {
    return (
      (await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(1000) })).status === 204
    );
  } catch {
    return false;
  }
}
