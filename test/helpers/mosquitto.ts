import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

/** Where Debian's `mosquitto` package installs the broker. */
export const MOSQUITTO_BINARY = '/usr/sbin/mosquitto';
const MOSQUITTO_PASSWD_BINARY = '/usr/bin/mosquitto_passwd';
const execFileAsync = promisify(execFile);

export interface MosquittoOptions {
  /** Extra mosquitto.conf lines, appended after ours; a line setting `allow_anonymous` replaces our default. */
  config?: string;
  /** Users and passwords; when given, the broker refuses anonymous clients. */
  users?: Readonly<Record<string, string>>;
}

/** A real mosquitto on 127.0.0.1; `stop()` must be called (in `afterAll`) or the process outlives the test. */
export interface Mosquitto {
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The temp directory holding the config, the persistence file and `mosquitto.log`. */
  readonly dir: string;
  /** Stops the broker for good and removes its temp directory. */
  stop(): Promise<void>;
  /** Stops the broker process but keeps its port, config and persistence, for outage tests. */
  halt(): Promise<void>;
  /** Starts the broker again on the same port after `halt()`; persistent sessions and retained messages survive. */
  resume(): Promise<void>;
  /** `halt()` then `resume()`. */
  restart(): Promise<void>;
  /** The broker's log so far, for assertion messages when something goes wrong. */
  log(): Promise<string>;
}

const READY_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;

/** Starts a real mosquitto on a free 127.0.0.1 port and resolves once it accepts TCP connections. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'magwatch-mosquitto-'));
  const port = await freePort();
  const configPath = join(dir, 'mosquitto.conf');
  const logPath = join(dir, 'mosquitto.log');
  let extra = options.config ?? '';
  if (options.users) {
    const passwordFile = join(dir, 'passwords');
    await writeFile(passwordFile, '');
    for (const [user, password] of Object.entries(options.users)) {
      await execFileAsync(MOSQUITTO_PASSWD_BINARY, ['-b', passwordFile, user, password]);
    }
    extra = `password_file ${passwordFile}\nallow_anonymous false\n${extra}`;
  }
  await writeFile(configPath, brokerConfig(port, dir, logPath, extra));

  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const started = spawn(MOSQUITTO_BINARY, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child = started;
    try {
      await waitUntilListening(port, started);
    } catch (error) {
      await terminate(started);
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(
        `mosquitto did not start on port ${port}: ${(error as Error).message}\n${stderr}${log}`,
      );
    }
  };

  const halt = async (): Promise<void> => {
    if (child) await terminate(child);
    child = undefined;
  };

  await launch();

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    halt,
    resume: launch,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logPath, 'utf8').catch(() => ''),
  };
}

function brokerConfig(port: number, dir: string, logPath: string, extra: string): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    `persistence true`,
    `persistence_location ${dir}/`,
    `log_dest file ${logPath}`,
    `log_type error`,
    `log_type warning`,
    `log_type notice`,
    // Tests publish bursts far faster than any sensor network; with mosquitto's default of 1,000 queued messages
    // per client, a pause of magwatch for a GC or a batch would drop samples ("Outgoing messages are being
    // dropped"). Tests that are about the broker's queue set their own bound in `config`.
    `max_queued_messages 0`,
  ];
  if (!/^\s*allow_anonymous\s/m.test(extra)) lines.push('allow_anonymous true');
  // Started as root, mosquitto would switch to user `mosquitto`, which cannot write our temp directory.
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  return `${lines.join('\n')}\n${extra}\n`;
}

async function waitUntilListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    }
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not listening after ${READY_TIMEOUT_MS} ms`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
