import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { MagwatchError } from '../errors.js';
import type { Label } from '../sim/anomalies.js';
import { formatTime, writeLongCsv } from '../sim/csv.js';
import { formatLabelsCsv } from '../sim/labels.js';
import { DEFAULT_SIMULATE_TOPIC, publishSimulation } from '../sim/publish.js';
import { DEFAULT_NOISE_NT, type SimulateOptions, simulateStream } from '../sim/simulate.js';
import { choice, integer, number, timestamp } from './options.js';

/** Parsed flags of `magwatch simulate`. */
export interface SimulateFlags {
  broker?: string;
  topic: string;
  observatories: number;
  sensors: number;
  rate: number;
  duration: number;
  seed: number;
  noise: number;
  /** Epoch ms of the first sample; default now, to the second. */
  start?: number;
  anomalies: 'default' | 'none';
  out?: string;
  labels?: string;
  /** Default: true when publishing. */
  realtime?: boolean;
}

/** Where the command reports progress; the CLI passes stdout and stderr. */
export interface SimulateIo {
  /** Data written when neither `--out` nor `--broker` is given. */
  readonly stdout: Writable;
  /** One line per message to the user. */
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** `magwatch simulate`: synthetic magnetometer feeds with labelled anomalies, to a CSV file or a broker. */
export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(
      'simulate magnetometer feeds (S<k>_OBS<o>_<i>, b_x/b_y/b_z) with injected, labelled anomalies: ' +
        'publish them to MQTT, or write a long CSV',
    )
    .option('--broker <url>', 'publish to this MQTT broker, e.g. mqtt://127.0.0.1:1883')
    .option('--topic <template>', 'publish topic; {sensor} and {group} are filled in', DEFAULT_SIMULATE_TOPIC)
    .option('--observatories <n>', 'observatories (groups OBS1, OBS2, …)', integer('--observatories', 1), 2)
    .option('--sensors <n>', 'sensors per observatory', integer('--sensors', 1), 3)
    .option('--rate <hz>', 'samples per second per sensor', positive('--rate'), 10)
    .option('--duration <s>', 'length of the run in seconds', positive('--duration'), 60)
    .option(
      '--seed <n>',
      'random seed: the same seed and options give the same data',
      integer('--seed', 0),
      1,
    )
    .option(
      '--noise <nT>',
      'white-noise std of the sensors in nT',
      number('--noise', (n) => n >= 0, 'zero or a positive number'),
      DEFAULT_NOISE_NT,
    )
    .option('--start <time>', 'time of the first sample, ISO 8601 (default: now)', timestamp('--start'))
    .option(
      '--anomalies <set>',
      "'default' injects one anomaly of each kind (storm, object, glitch, spike, step, ramp); 'none' none",
      choice('--anomalies', ['default', 'none'] as const),
      'default',
    )
    .option('--out <file>', 'write the data as a long CSV (timestamp,sensor_id,b_x,b_y,b_z)')
    .option('--labels <file>', 'write the injected anomalies as a labels CSV (for magwatch evaluate)')
    .option('--realtime', 'publish each sample when its time comes (default when publishing)')
    .option('--no-realtime', 'publish as fast as the broker takes the messages')
    .action(async (flags: SimulateFlags) => {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await runSimulate(flags, {
          stdout: process.stdout,
          log: (line) => process.stderr.write(`${line}\n`),
          signal: controller.signal,
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}

/**
 * Runs the command on parsed flags: writes the CSV (`--out`, or stdout when there is no `--broker`), the
 * labels (`--labels`), and publishes (`--broker`).
 */
export async function runSimulate(flags: SimulateFlags, io: SimulateIo): Promise<void> {
  const options: SimulateOptions = {
    observatories: flags.observatories,
    sensorsPerObservatory: flags.sensors,
    rateHz: flags.rate,
    durationS: flags.duration,
    seed: flags.seed,
    noiseNt: flags.noise,
    start: flags.start ?? Math.floor(Date.now() / 1000) * 1000,
    anomalies: flags.anomalies === 'none' ? [] : 'default',
  };
  const stream = simulateStream(options);

  if (flags.labels !== undefined) await writeOutput(flags.labels, formatLabelsCsv(stream.labels), '--labels');
  if (flags.out !== undefined) {
    await writeOutput(flags.out, stream, '--out');
  } else if (flags.broker === undefined) {
    try {
      await writeLongCsv(io.stdout, stream);
    } catch (error) {
      // A reader that has seen enough (`magwatch simulate | head`) closes the pipe: that is not a failure.
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
    }
  }
  if (flags.broker === undefined) return;

  const realtime = flags.realtime ?? true;
  io.log(
    `publishing ${stream.sensors.length} sensors x ${stream.samples} samples to ${flags.topic} ` +
      `(${realtime ? 'real time' : 'as fast as possible'}), ${stream.labels.length} anomalies`,
  );
  const summary = await publishSimulation(stream, {
    url: flags.broker,
    topic: flags.topic,
    realtime,
    ...(io.signal ? { signal: io.signal } : {}),
    onAnomaly: (label) => io.log(describeAnomaly(label)),
  });
  io.log(`${summary.stopped ? 'stopped after' : 'published'} ${summary.messages} messages`);
}

/** One line per anomaly as it starts: kind, time span, sensors and components. */
export function describeAnomaly(label: Label): string {
  return (
    `anomaly ${label.kind} ${formatTime(label.start)} to ${formatTime(label.end)}: ` +
    `${label.sensors.join(', ')} (${label.components.join(', ')})`
  );
}

async function writeOutput(
  path: string,
  content: string | Parameters<typeof writeLongCsv>[1],
  option: string,
) {
  try {
    if (typeof content === 'string') await writeFile(path, content);
    else await writeLongCsv(path, content);
  } catch (error) {
    throw new MagwatchError(
      'MW_OUTPUT_UNWRITABLE',
      `${option} ${path}: cannot write (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path`,
      { cause: error },
    );
  }
}

function positive(option: string) {
  return number(option, (n) => n > 0, 'a positive number');
}
