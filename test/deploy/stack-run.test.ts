/**
 * The compose stack without Docker: the built `magwatch` executable (npm test builds it first) runs the
 * magwatch service's command and environment, with only the addresses changed to local processes started from
 * the stack's own files (mosquitto.conf, the influxdb database); a small bundle trained the way the trainer
 * service trains; the demo feed from the simulator; the Dockerfile's HEALTHCHECK; the dashboard's queries.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import {
  type ComposeInflux,
  type ComposeMosquitto,
  freePort,
  runHealthcheck,
  startComposeInflux,
  startComposeMosquitto,
  terminate,
} from './services.js';
import {
  DESIGN_MEASUREMENTS,
  dashboardQueries,
  flags,
  influxqlNames,
  readCompose,
  readDashboard,
  service,
} from './stack.js';

const BIN = join(ROOT, 'bin', 'magwatch.js');
const compose = readCompose();
const magwatchService = service(compose, 'magwatch');
/** The compose network's simulated network, scaled down: one sensor, and 8-sample windows to train fast. */
const NETWORK = ['--observatories', '1', '--sensors', '1', '--rate', '10', '--seed', '1'];
const CHANNELS = ['S1_OBS1_1__b_x', 'S1_OBS1_1__b_y', 'S1_OBS1_1__b_z'];

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('magwatch run with the compose configuration', () => {
  let dir: string;
  let broker: ComposeMosquitto;
  let influx: ComposeInflux;
  let magwatch: ChildProcess;
  let port: number;
  let output = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-compose-run-'));
    [broker, influx, port] = await Promise.all([startComposeMosquitto(), startComposeInflux(), freePort()]);

    // The trainer service's two steps, on a smaller network and model.
    const trainer = readCompose().services['trainer']!.command![0]!;
    expect(flags(trainer).get('--anomalies')).toBe('none');
    const csv = join(dir, 'normal.csv');
    const bundle = join(dir, 'site');
    const simulated = await runCli([
      'simulate',
      '--out',
      csv,
      '--anomalies',
      'none',
      '--duration',
      '12',
      ...NETWORK,
    ]);
    expect(simulated.code, simulated.stderr).toBe(0);
    const trained = await runCli(
      [
        'train',
        '--input',
        csv,
        '--out',
        bundle,
        '--window',
        '8',
        '--latent',
        '2',
        '--epochs',
        '1',
        '--workers',
        '1',
      ],
      { timeoutMs: 150_000 },
    );
    expect(trained.code, trained.stderr).toBe(0);

    const environment: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (!name.startsWith('MAGWATCH_')) environment[name] = value;
    }
    Object.assign(environment, magwatchService.environment, {
      MAGWATCH_MQTT_URL: broker.url,
      MAGWATCH_INFLUX_URL: influx.url,
      MAGWATCH_MODEL: bundle,
      MAGWATCH_HTTP_PORT: String(port),
      MAGWATCH_INFLUX_FILE: join(dir, 'points.lp'),
    });
    // The image's /app is the package root (the Dockerfile's WORKDIR and COPY lines, see dockerfile.test.ts).
    const command = magwatchService.command!.map((arg) =>
      arg.startsWith('/app/') ? join(ROOT, arg.slice(5)) : arg,
    );
    magwatch = spawn(process.execPath, [BIN, ...command], {
      cwd: dir,
      env: environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    magwatch.stdout?.on('data', keep);
    magwatch.stderr?.on('data', keep);
  }, 240_000);

  afterAll(async () => {
    if (magwatch) await terminate(magwatch);
    await Promise.all([broker?.stop(), influx?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes the Dockerfile HEALTHCHECK and becomes ready', async () => {
    await until('HEALTHCHECK passes', 60_000, async () => {
      if (magwatch.exitCode !== null)
        throw new Error(`magwatch exited with ${magwatch.exitCode}:\n${output}`);
      return (await runHealthcheck(port)) === 0 ? true : undefined;
    });
    await until('/readyz answers 200', 30_000, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return response?.status === 200 ? true : undefined;
    });
  }, 100_000);

  it('writes the simulated feed as the DESIGN measurements that the dashboard plots', async () => {
    const fed = await runCli([
      'simulate',
      '--broker',
      broker.url,
      '--duration',
      '10',
      '--no-realtime',
      ...NETWORK,
    ]);
    expect(fed.code, fed.stderr).toBe(0);

    const count = async (measurement: string, field: string) => {
      const result = await influx.query(`SELECT count("${field}") FROM "${measurement}"`);
      const value = result.series?.[0]?.values[0]?.[1];
      return typeof value === 'number' && value > 0 ? value : undefined;
    };
    await until(`magwatch_rmse points in InfluxDB\n${output}`, 30_000, () => count('magwatch_rmse', 'rmse'));
    await until(`magwatch_votes points in InfluxDB\n${output}`, 30_000, () =>
      count('magwatch_votes', 'votes'),
    );

    for (const measurement of ['magwatch_rmse', 'magwatch_votes']) {
      const design = DESIGN_MEASUREMENTS[measurement]!;
      const tags = await influx.query(`SHOW TAG KEYS FROM "${measurement}"`);
      const fields = await influx.query(`SHOW FIELD KEYS FROM "${measurement}"`);
      const tagKeys = tags.series?.[0]?.values.map((row) => row[0]) ?? [];
      const fieldKeys = fields.series?.[0]?.values.map((row) => row[0]) ?? [];
      expect(tagKeys.sort(), measurement).toEqual([...design.tags].sort());
      expect(fieldKeys.sort(), measurement).toEqual([...design.fields].sort());
    }

    const now = Date.now();
    for (const { where, query } of dashboardQueries(readDashboard())) {
      const sent = query
        .replaceAll('$timeFilter', `time >= ${now - 3_600_000}ms and time <= ${now + 3_600_000}ms`)
        .replaceAll('$__interval', '1s')
        .replaceAll('$group', '(OBS1)')
        .replaceAll('$channel', `(${CHANNELS.join('|')})`);
      const result = await influx.query(sent);
      expect(result.error, where).toBeUndefined();
      // Events need a vote or a silent sensor, which this short feed does not make; the rest must have data.
      if (influxqlNames(query).measurements[0] !== 'magwatch_events') {
        expect(result.series?.length, `${where} returns series`).toBeGreaterThan(0);
      }
    }
  }, 100_000);

  it('stops on SIGTERM with exit code 0', async () => {
    expect(await terminate(magwatch), output).toBe(0);
  }, 20_000);
});
