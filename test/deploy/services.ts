/**
 * The compose stack's services run as local processes, for the tests of test/deploy: Debian's mosquitto 2 with
 * config/compose/mosquitto.conf, and InfluxDB 1.x with the database of the influxdb service.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { type Influxd, startInfluxd } from '../helpers/influxd.js';
import { MOSQUITTO_BINARY } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { healthcheckCommand, MOSQUITTO_CONF_PATH, readCompose, readText, service } from './stack.js';

export { freePort };

const READY_TIMEOUT_MS = 10_000;

export interface ComposeMosquitto {
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts mosquitto with config/compose/mosquitto.conf, changing only what differs outside the container: the
 * listener's port and address, the persistence directory and, when started as root, the user.
 */
export async function startComposeMosquitto(): Promise<ComposeMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'magwatch-compose-mosquitto-'));
  const port = await freePort();
  let text = readText(MOSQUITTO_CONF_PATH)
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
  if (!text.includes(`listener ${port} `))
    throw new Error('config/compose/mosquitto.conf has no "listener 1883" line');
  if (process.getuid?.() === 0) text += `\nuser ${userInfo().username}\n`;
  const configPath = join(dir, 'mosquitto.conf');
  await writeFile(configPath, text);

  const broker = spawn(MOSQUITTO_BINARY, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  broker.stdout?.on('data', keep);
  broker.stderr?.on('data', keep);

  const stop = async () => {
    await terminate(broker);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, broker, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `mqtt://127.0.0.1:${port}`, stop };
}

/** Stops a child process with SIGTERM (SIGKILL after 5 s) and resolves with its exit code. */
export async function terminate(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectTcp({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`mosquitto is not listening on ${port} after ${READY_TIMEOUT_MS} ms: ${output()}`);
}

/**
 * Runs the Dockerfile's HEALTHCHECK command here, with `node` as this process's executable and the HTTP port
 * in MAGWATCH_HTTP_PORT as compose sets it; resolves with the exit code (0 healthy).
 */
export function runHealthcheck(port: number): Promise<number | null> {
  const [program, ...args] = healthcheckCommand();
  if (program !== 'node') throw new Error(`HEALTHCHECK runs ${program}, not node`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, MAGWATCH_HTTP_PORT: String(port) },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export interface ComposeInflux {
  /** `http://127.0.0.1:<port>/<database>`, as MAGWATCH_INFLUX_URL takes it. */
  readonly url: string;
  readonly database: string;
  /** Runs InfluxQL on the database; epoch ms times. */
  query(influxql: string): Promise<{ series?: InfluxSeries[]; error?: string }>;
  stop(): Promise<void>;
}

/** Starts influxd with the database that the compose file's influxdb service creates (INFLUXDB_DB). */
export async function startComposeInflux(): Promise<ComposeInflux> {
  const database = service(readCompose(), 'influxdb').environment?.['INFLUXDB_DB'];
  if (!database) throw new Error('the influxdb service of docker-compose.yml sets no INFLUXDB_DB');
  const influxd: Influxd = await startInfluxd();
  const query = async (influxql: string) => {
    const params = new URLSearchParams({ db: database, epoch: 'ms', q: influxql });
    const response = await fetch(`${influxd.url}/query?${params}`, { method: 'POST' });
    const body = (await response.json()) as {
      results?: Array<{ series?: InfluxSeries[]; error?: string }>;
      error?: string;
    };
    return body.error !== undefined ? { error: body.error } : body.results![0]!;
  };
  const created = await query(`CREATE DATABASE "${database}"`);
  if (created.error) {
    await influxd.stop();
    throw new Error(`influxd cannot create ${database}: ${created.error}`);
  }
  return { url: `${influxd.url}/${database}`, database, query, stop: () => influxd.stop() };
}
