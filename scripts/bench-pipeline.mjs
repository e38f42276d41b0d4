#!/usr/bin/env node
/**
 * Pipeline benchmark of the live detector through a real mosquitto (run after `npm run build`):
 *
 *   node scripts/bench-pipeline.mjs [--engine auto|onnx|tfjs] [--sensors 100] [--seconds 5] [--minutes 0.5]
 *                                    [--rate 10000] [--window-rate 1000] [--only ingest,single,latency,memory,soak] [--json]
 *
 * - ingest: samples/s with 100-sample batch payloads, and the accounting published = accepted + counted drops;
 * - single: messages/s with one sample per payload;
 * - latency: publish of the message that completes a window → receipt of its anomaly event, at `--window-rate`
 *   windows/s (default 1,000), in three shapes: `staggered`, each sensor sends its window in one message at its
 *   own moment of the round; `lockstep`, the sensors stream their windows and all send the completing sample
 *   at the same instant (clock-synchronised observatories); `burst`, every sensor sends its whole window at
 *   the same instant, so the round's 6,400 samples are decoded after the clock starts;
 * - memory: bytes per channel beyond the model (heap + array buffers, and RSS) with many channels vs few;
 * - soak: RSS over `--minutes` at `--rate` three-axis samples/s (the full target is 10 minutes at 10,000/s).
 *
 * The bundle has random (untrained) weights, one model shared by `--sensors` x 3 channels, threshold 1 on
 * unit-scaled values: a window of zeros scores 0 (normal), a window of large values scores far above 1.
 * Targets (DESIGN, live detector): >= 100,000 samples/s batched, >= 20,000 msgs/s single, p99 < 50 ms,
 * < 4 KB per channel, RSS flat within 10 %.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { connectAsync } from 'mqtt';
import pino from 'pino';

const { benchChannels, writeRandomBundle } = await import('../dist/bench/bundles.js');
const { configSchema } = await import('../dist/config/schema.js');
const { startLiveService } = await import('../dist/service.js');

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const WINDOW = 64;
const LATENT = 32;
const CADENCE_MS = 1000;
const PHASES = ['ingest', 'single', 'latency', 'memory', 'soak'];

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'auto' },
    sensors: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '5' },
    minutes: { type: 'string', default: '0.5' },
    rate: { type: 'string', default: '10000' },
    'window-rate': { type: 'string', default: '1000' },
    'memory-sensors': { type: 'string', default: '1000' },
    'max-delay-ms': { type: 'string' },
    'max-batch': { type: 'string' },
    only: { type: 'string', default: PHASES.join(',') },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'usage: node scripts/bench-pipeline.mjs [--engine auto|onnx|tfjs] [--sensors 100] [--seconds 5] ' +
      '[--minutes 0.5] [--rate 10000] [--window-rate 1000] [--memory-sensors 1000] [--max-delay-ms n] [--max-batch n] ' +
      `[--only ${PHASES.join(',')}] [--json]\n`,
  );
  process.exit(0);
}
const sensors = positive('--sensors', args.sensors);
const seconds = positive('--seconds', args.seconds);
const minutes = positive('--minutes', args.minutes);
const soakRate = positive('--rate', args.rate);
const windowRate = positive('--window-rate', args['window-rate']);
const memorySensors = positive('--memory-sensors', args['memory-sensors']);
const only = new Set(args.only.split(','));
for (const phase of only)
  if (!PHASES.includes(phase)) fail(`--only: unknown phase '${phase}'; use ${PHASES.join(', ')}`);
if (!['auto', 'onnx', 'tfjs'].includes(args.engine))
  fail(`--engine: expected auto, onnx or tfjs, got '${args.engine}'`);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const log = (message) => {
  if (!args.json) process.stderr.write(`bench-pipeline: ${message}\n`);
};

// ---------------------------------------------------------------------------------------------------------------

/** A random-weight bundle of `count` sensors x 3 components; with ONNX files when the engine may use them. */
async function makeBundle(dir, count) {
  await writeRandomBundle(dir, {
    channels: benchChannels(count * 3),
    window: WINDOW,
    latent: LATENT,
    shared: true,
  });
  if (args.engine !== 'tfjs') {
    try {
      const { exportBundleOnnx } = await import('../dist/detector/onnx/export.js');
      await exportBundleOnnx(dir);
    } catch (error) {
      if (args.engine === 'onnx') throw error;
      log(`no ONNX export (${String(error?.message ?? error).split('\n')[0]}); auto falls back to tfjs`);
    }
  }
  return dir;
}

async function startService(bundleDir, name) {
  const config = configSchema.parse({
    mqtt: { url: broker.url, clientId: `bench-${name}-${process.pid}`, clean: true },
    model: { path: bundleDir, engine: args.engine },
    stream: {
      bucketMs: CADENCE_MS,
      maxGapMs: 3_600_000,
      silentAfterMs: 3_600_000,
      ...(args['max-delay-ms'] !== undefined ? { maxDelayMs: Number(args['max-delay-ms']) } : {}),
      ...(args['max-batch'] !== undefined ? { maxBatch: Number(args['max-batch']) } : {}),
    },
    influx: { file: join(scratch, `${name}.lp`) },
    http: { enabled: false },
  });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const service = await startLiveService(config, logger);
  report.engineUsed = `${service.engine.name}/${service.engine.backend}`;
  return { service, config };
}

/** Three-axis samples of one sensor from `from` (sample index), as a `magwatch` payload. */
function payload(from, count, value, batch) {
  const samples = [];
  for (let i = from; i < from + count; i++) {
    const ts = BASE_TIME + i * CADENCE_MS;
    samples.push({ ts, b_x: value(i, 0), b_y: value(i, 1), b_z: value(i, 2) });
  }
  return Buffer.from(JSON.stringify(batch ? { samples } : samples[0]));
}

/** Data time of sample 0: old enough that the whole run stays in the past, aligned to the window. */
const BASE_TIME = Math.floor((Date.now() - 7 * 86_400_000) / (WINDOW * CADENCE_MS)) * WINDOW * CADENCE_MS;

/** Smooth, small, unit-scaled noise: normal data for the random model. */
const quiet = (i, c) => 0.01 * Math.sin(i / 7 + c);

async function publisher(name) {
  const client = await connectAsync(broker.url, {
    clientId: `bench-pub-${name}-${process.pid}`,
    clean: true,
    reconnectPeriod: 0,
  });
  // Without this, Nagle's algorithm holds each small publish for the broker's delayed ACK: up to 40 ms.
  client.stream.setNoDelay(true);
  return client;
}

/** Publishes `messages` at QoS 1 keeping at most `inflight` unacknowledged; resolves when all are acknowledged. */
async function publishAll(client, messages, inflight = 2000) {
  let next = 0;
  let done = 0;
  await new Promise((resolve, reject) => {
    const pump = () => {
      while (next < messages.length && next - done < inflight) {
        const { topic, body } = messages[next++];
        client.publish(topic, body, { qos: 1 }, (error) => {
          if (error) return reject(error);
          done++;
          if (done === messages.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

/**
 * `publishAll` from a worker thread with its own client: the sensors are other machines, so their MQTT encoding
 * and acknowledgements must not run on the event loop of the service being measured.
 */
async function publishFromWorker(name, messages) {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { connectAsync } = require(workerData.mqtt);
    ${publishAll.toString()}
    connectAsync(workerData.url, { clientId: workerData.clientId, clean: true, reconnectPeriod: 0 })
      .then(async (client) => {
        await publishAll(client, workerData.messages);
        await client.endAsync();
        parentPort.postMessage('done');
      })
      .catch((error) => parentPort.postMessage({ error: String(error?.message ?? error) }));
  `;
  const worker = new Worker(source, {
    eval: true,
    workerData: {
      mqtt: createRequire(import.meta.url).resolve('mqtt'),
      url: broker.url,
      clientId: `bench-pub-${name}-${process.pid}`,
      messages,
    },
  });
  try {
    const reply = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (reply !== 'done') throw new Error(`publisher ${name}: ${reply.error}`);
  } finally {
    await worker.terminate();
  }
}

/**
 * Ingest throughput: every sensor publishes `perSensor` samples, `batch` per message, as fast as the broker takes
 * them; the clock stops when the detector has taken every value in (accepted or counted as dropped).
 */
async function ingestPhase(bundleDir, batch) {
  const perSensor = batch > 1 ? WINDOW * 50 : WINDOW * 5;
  const { service } = await startService(bundleDir, `ingest-${batch}`);
  try {
    const messages = [];
    for (let from = 0; from < perSensor; from += batch) {
      for (let s = 1; s <= sensors; s++) {
        messages.push({ topic: `magwatch/raw/S${s}`, body: payload(from, batch, quiet, batch > 1) });
      }
    }
    const published = sensors * perSensor;
    log(`${batch === 1 ? 'single' : 'ingest'}: ${messages.length} messages, ${published} samples`);
    gc();
    const start = performance.now();
    const publishing = publishFromWorker(`ingest-${batch}`, messages);
    let ingestedAt = 0;
    await until(() => {
      const stats = service.detector.stats();
      const invalid = sum(Object.values(service.ingest.counters().invalid));
      if (!ingestedAt && stats.samples + invalid >= published) ingestedAt = performance.now();
      return ingestedAt > 0;
    }, 600_000);
    await publishing;
    const windowsDue = (published * 3) / WINDOW;
    await until(() => {
      const s = service.detector.stats();
      return s.windowsScored + s.dropped.queue + s.dropped.inference >= windowsDue;
    }, 600_000);
    const scoredAt = performance.now();
    const stats = service.detector.stats();
    const ingest = service.ingest.counters();
    const values = published * 3;
    const drops = stats.dropped.duplicate + stats.dropped.late + stats.dropped.unknownChannel + stats.missing;
    const seconds = (ingestedAt - start) / 1000;
    return {
      batch,
      messages: messages.length,
      published,
      ingested: ingest.samples,
      invalid: ingest.invalid,
      samplesPerSec: published / seconds,
      messagesPerSec: messages.length / seconds,
      accounting: {
        values,
        accepted: stats.accepted,
        droppedValues: drops,
        balanced:
          stats.accepted + drops === values &&
          ingest.samples === published &&
          stats.windowsScored + stats.dropped.queue + stats.dropped.inference === windowsDue,
        windowsDue,
        windowsScored: stats.windowsScored,
        windowsDropped: { queue: stats.dropped.queue, inference: stats.dropped.inference },
      },
      windowsPerSec: stats.windowsScored / ((scoredAt - start) / 1000),
      batchSizeMean: stats.batchSize.mean,
      inferenceMsMean: stats.inferenceMs.mean,
    };
  } finally {
    await service.stop();
  }
}

/**
 * Latency at `--window-rate` windows/s: rounds of one 64-sample message per sensor (one window per channel), alternately
 * anomalous (values 50) and normal (quiet), paced so that the channels complete `--window-rate` windows per second. An
 * anomalous round opens an event, the next normal round ends it (3 normal buckets); each event's latency runs
 * from the publish of the round's last message to its receipt on `magwatch/anomalies/#`.
 *
 * `burst`: every sensor publishes at the start of the round, so all windows complete at once (sensors in lockstep,
 * the worst case: the whole round must be decoded and scored before the vote); `staggered`: the sensors' messages
 * are spread evenly over the round, as unsynchronised sensors send them.
 */
async function latencyPhase(bundleDir, shape) {
  const channels = sensors * 3;
  const roundMs = (channels / windowRate) * 1000;
  const rounds = Math.max(4, 2 * Math.round((seconds * 1000) / roundMs / 2));
  const { service, config } = await startService(bundleDir, `latency-${shape}`);
  const client = await publisher(`latency-${shape}`);
  const listener = await publisher(`latency-${shape}-events`);
  const sentAt = new Map();
  const latencies = { start: [], end: [] };
  listener.on('message', (_topic, body) => {
    const received = performance.now();
    const event = JSON.parse(body.toString());
    // An event names its start bucket (the anomalous round's first sample); its end follows the next round.
    const round = Math.round((Date.parse(event.start) - BASE_TIME) / (WINDOW * CADENCE_MS));
    const key = event.event === 'anomaly.start' ? round : round + 1;
    const sent = sentAt.get(key);
    if (sent !== undefined)
      latencies[event.event === 'anomaly.start' ? 'start' : 'end'].push(received - sent);
  });
  await listener.subscribeAsync('magwatch/anomalies/#', { qos: 1 });
  try {
    const anomalous = () => 50;
    // Per round and sensor: the window's first samples (`head`, lockstep only) and the message that completes it.
    const bodies = [];
    for (let r = 0; r < rounds; r++) {
      const value = r % 2 === 0 ? anomalous : quiet;
      const last = r * WINDOW + WINDOW - 1;
      bodies.push(
        Array.from({ length: sensors }, (_, s) => ({
          topic: `magwatch/raw/S${s + 1}`,
          head: shape === 'lockstep' ? payload(r * WINDOW, WINDOW - 1, value, true) : undefined,
          body:
            shape === 'lockstep' ? payload(last, 1, value, false) : payload(r * WINDOW, WINDOW, value, true),
        })),
      );
    }
    log(`latency (${shape}): ${rounds} rounds of ${channels} windows every ${roundMs.toFixed(0)} ms`);
    const waitUntil = async (due) => {
      while (performance.now() < due) await sleep(Math.min(5, due - performance.now()));
    };
    const send = (topic, body) =>
      new Promise((resolve, reject) =>
        client.publish(topic, body, { qos: 0 }, (error) => (error ? reject(error) : resolve())),
      );
    const start = performance.now();
    for (let r = 0; r < rounds; r++) {
      const roundStart = start + r * roundMs;
      if (shape === 'lockstep') {
        // The heads spread over the first 80 % of the round; the completing samples all leave at 90 %.
        for (const [s, { topic, head }] of bodies[r].entries()) {
          await waitUntil(roundStart + ((0.8 * s) / sensors) * roundMs);
          await send(topic, head);
        }
        await waitUntil(roundStart + 0.9 * roundMs);
        await Promise.all(bodies[r].map(({ topic, body }) => send(topic, body)));
      } else if (shape === 'burst') {
        await waitUntil(roundStart);
        await Promise.all(bodies[r].map(({ topic, body }) => send(topic, body)));
      } else {
        // Sensor s sends at s/sensors of the round; the last one leaves a tenth of the round for the vote.
        for (const [s, { topic, body }] of bodies[r].entries()) {
          await waitUntil(roundStart + ((0.9 * s) / sensors) * roundMs);
          await send(topic, body);
        }
      }
      // The last message written completes the round's windows.
      sentAt.set(r, performance.now());
    }
    const expected = rounds;
    await until(() => latencies.start.length + latencies.end.length >= expected, 30_000).catch(() => {});
    const elapsed = (performance.now() - start) / 1000;
    const all = [...latencies.start, ...latencies.end].sort((a, b) => a - b);
    return {
      shape,
      rounds,
      windowsPerSec: service.detector.stats().windowsScored / elapsed,
      events: all.length,
      eventsExpected: expected,
      maxDelayMs: config.stream.maxDelayMs,
      maxBatch: config.stream.maxBatch,
      p50Ms: quantile(all, 0.5),
      p99Ms: quantile(all, 0.99),
      maxMs: all.at(-1),
      startP50Ms: quantile(
        [...latencies.start].sort((a, b) => a - b),
        0.5,
      ),
      endP50Ms: quantile(
        [...latencies.end].sort((a, b) => a - b),
        0.5,
      ),
    };
  } finally {
    await client.endAsync();
    await listener.endAsync();
    await service.stop();
  }
}

/**
 * Memory per channel: the same shared model with 3 channels and with `--memory-sensors` x 3, each channel fed
 * one full window so its buffers exist; the difference after GC, divided by the extra channels.
 */
async function memoryPhase(root) {
  const measure = async (count) => {
    const dir = await makeBundle(join(root, `memory-${count}`), count);
    const { service } = await startService(dir, `memory-${count}`);
    try {
      // From a worker, so that neither the payloads nor the publisher's client count as the service's memory.
      await publishFromWorker(
        `memory-${count}`,
        Array.from({ length: count }, (_, s) => ({
          topic: `magwatch/raw/S${s + 1}`,
          body: payload(0, WINDOW, quiet, true),
        })),
      );
      await until(() => service.detector.stats().windowsScored >= count * 3, 120_000);
      // Past the points sink's flush interval, so that no written point is still buffered.
      await sleep(1500);
      gc();
      gc();
      const m = process.memoryUsage();
      // `external` already includes `arrayBuffers` (Node.js documents it so); adding both counted them twice.
      return { heap: m.heapUsed, buffers: m.external, rss: m.rss };
    } finally {
      await service.stop();
    }
  };
  const few = await measure(1);
  const many = await measure(memorySensors);
  const extra = (memorySensors - 1) * 3;
  return {
    channelsFew: 3,
    channelsMany: memorySensors * 3,
    bytesPerChannel: (many.heap + many.buffers - few.heap - few.buffers) / extra,
    heapBytesPerChannel: (many.heap - few.heap) / extra,
    bufferBytesPerChannel: (many.buffers - few.buffers) / extra,
    rssBytesPerChannel: (many.rss - few.rss) / extra,
  };
}

/** RSS every 5 s while `--rate` samples/s flow for `--minutes`, in 100-sample batches per sensor. */
async function soakPhase(bundleDir) {
  const { service } = await startService(bundleDir, 'soak');
  const client = await publisher('soak');
  const rss = [];
  try {
    const perSensorPerSec = soakRate / sensors;
    const batch = 100;
    const tickMs = (batch / perSensorPerSec) * 1000;
    const totalMs = minutes * 60_000;
    const start = performance.now();
    let sampleAt = start;
    let tick = 0;
    let published = 0;
    log(
      `soak: ${soakRate} samples/s for ${minutes} min, one ${batch}-sample message per sensor every ${tickMs.toFixed(0)} ms`,
    );
    while (performance.now() - start < totalMs) {
      const due = start + tick * tickMs;
      while (performance.now() < due) await sleep(Math.min(20, due - performance.now()));
      const messages = [];
      for (let s = 1; s <= sensors; s++) {
        messages.push({ topic: `magwatch/raw/S${s}`, body: payload(tick * batch, batch, quiet, true) });
      }
      await publishAll(client, messages);
      published += sensors * batch;
      tick++;
      if (performance.now() >= sampleAt) {
        rss.push({ atS: (performance.now() - start) / 1000, rss: process.memoryUsage().rss });
        sampleAt += 5000;
      }
    }
    const stats = service.detector.stats();
    // The first samples include the engine's warm-up; the flatness is judged from the second sample on.
    const steady = rss.slice(1).map((r) => r.rss);
    const first = steady[0] ?? rss[0].rss;
    const last = steady.at(-1) ?? first;
    return {
      minutes,
      rate: soakRate,
      achievedRate: published / ((performance.now() - start) / 1000),
      windowsScored: stats.windowsScored,
      windowsDropped: stats.dropped.queue + stats.dropped.inference,
      rssFirstMB: first / 2 ** 20,
      rssLastMB: last / 2 ** 20,
      rssMaxMB: Math.max(...rss.map((r) => r.rss)) / 2 ** 20,
      steadyMinMB: Math.min(first, ...steady) / 2 ** 20,
      steadyMaxMB: Math.max(first, ...steady) / 2 ** 20,
      rssGrowth: (last - first) / first,
      rssSeries: rss.map((r) => [Math.round(r.atS), Math.round(r.rss / 2 ** 20)]),
    };
  } finally {
    await client.endAsync();
    await service.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function startBroker(dir) {
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    // Unbounded queues: the broker must lose nothing, so that published = received holds.
    'max_queued_messages 0',
    // As config/compose/mosquitto.conf: forward each message at once instead of waiting for the client's ACK.
    'set_tcp_nodelay true',
    'max_inflight_messages 0',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
  ];
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  await writeFile(config, `${lines.join('\n')}\n`);
  const child = spawn(MOSQUITTO, ['-c', config], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.once('error', (error) =>
    fail(`cannot start ${MOSQUITTO}: ${error.message}; install mosquitto or set MOSQUITTO_BIN`),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const probe = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 });
      await probe.endAsync();
      break;
    } catch (error) {
      if (Date.now() > deadline) fail(`mosquitto did not start on port ${port}: ${error.message}`);
      await sleep(100);
    }
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function until(check, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`bench-pipeline: timed out after ${timeoutMs} ms`);
    await sleep(5);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function sum(values) {
  return values.reduce((a, b) => a + (b ?? 0), 0);
}

function positive(name, text) {
  const value = Number(text);
  if (!(value > 0)) fail(`${name}: expected a positive number, got '${text}'`);
  return value;
}

function fail(message) {
  process.stderr.write(`bench-pipeline: ${message}\n`);
  process.exit(2);
}

function printTable({ machine, engine, engineUsed, channels, results }) {
  const f = (x, digits = 0) =>
    Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
  const rows = [];
  const { ingest, single, latency, memory, soak } = results;
  if (ingest) {
    rows.push(['ingest, 100-sample batches', `${f(ingest.samplesPerSec)} samples/s`, '>= 100,000']);
    rows.push(['  accounting balanced', String(ingest.accounting.balanced), 'true']);
    rows.push([
      '  windows scored',
      `${f(ingest.windowsPerSec)} windows/s (dropped ${ingest.accounting.windowsDropped.queue})`,
      '',
    ]);
  }
  if (single) {
    rows.push(['ingest, single samples', `${f(single.messagesPerSec)} msgs/s`, '>= 20,000']);
    rows.push(['  accounting balanced', String(single.accounting.balanced), 'true']);
  }
  for (const shape of latency ?? []) {
    rows.push([
      `latency (${shape.shape}) at ${f(shape.windowsPerSec)} windows/s`,
      `p50 ${f(shape.p50Ms, 1)} ms, p99 ${f(shape.p99Ms, 1)} ms (${shape.events}/${shape.eventsExpected} events)`,
      'p99 < 50 ms',
    ]);
  }
  if (memory) {
    rows.push([
      `memory per channel (${memory.channelsMany} vs 3)`,
      `${f(memory.bytesPerChannel)} B (heap ${f(memory.heapBytesPerChannel)} + buffers ${f(memory.bufferBytesPerChannel)}), ${f(memory.rssBytesPerChannel)} B RSS`,
      '< 4,096 B',
    ]);
  }
  if (soak) {
    rows.push([
      `RSS over ${soak.minutes} min at ${f(soak.achievedRate)} samples/s`,
      `${f(soak.rssFirstMB, 1)} → ${f(soak.rssLastMB, 1)} MB (${f(100 * soak.rssGrowth, 1)} %), every 5 s within ${f(soak.steadyMinMB, 1)}-${f(soak.steadyMaxMB, 1)}`,
      'within 10 %',
    ]);
  }
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), 6));
  process.stdout.write(
    `magwatch pipeline bench: engine ${engine} (${engineUsed}), ${channels} channels, ${machine.cpus} CPUs, load ${machine.loadavg.map((l) => l.toFixed(1)).join(' ')}\n`,
  );
  for (const row of [['measure', 'result', 'target'], ...rows]) {
    process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i])).join('  ')}\n`);
  }
}

/** Set by `main` before any phase runs. */
let scratch;
let broker;
let report;

async function main() {
  scratch = await mkdtemp(join(tmpdir(), 'magwatch-bench-pipeline-'));
  broker = await startBroker(scratch);
  report = {
    machine: { cpus: cpus().length, loadavg: loadavg() },
    engine: args.engine,
    sensors,
    channels: sensors * 3,
    results: {},
  };
  try {
    const bundleDir = await makeBundle(join(scratch, 'bundle'), sensors);
    if (only.has('ingest')) report.results.ingest = await ingestPhase(bundleDir, 100);
    if (only.has('single')) report.results.single = await ingestPhase(bundleDir, 1);
    if (only.has('latency')) {
      report.results.latency = [
        await latencyPhase(bundleDir, 'staggered'),
        await latencyPhase(bundleDir, 'lockstep'),
        await latencyPhase(bundleDir, 'burst'),
      ];
    }
    if (only.has('memory')) report.results.memory = await memoryPhase(scratch);
    if (only.has('soak')) report.results.soak = await soakPhase(bundleDir);
  } finally {
    await broker.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  report.machine.loadavgAfter = loadavg();
  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printTable(report);
}

await main();
