/**
 * `magwatch run` stopped by signals while a replay floods it: the first SIGTERM flushes everything and exits 0
 * within the 5 s deadline with a complete points file; a second signal exits at once, non-zero.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publishMessages } from '../../src/ingest/publish.js';
import { ROOT } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { BUNDLE, exampleMessages, waitFor } from './helpers.js';

const BIN = join(ROOT, 'bin/magwatch.js');
/** One line of line protocol: measurement and tags, fields, an integer timestamp. */
const LINE =
  /^magwatch_(rmse|votes|events)(,[^ ]+)? (\w+=("([^"\\]|\\.)*"|[^ ,"]+))(,\w+=("([^"\\]|\\.)*"|[^ ,"]+))* \d+$/;

describe('magwatch run stopped under load', () => {
  let mosquitto: Mosquitto;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    mosquitto = await startMosquitto();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await mosquitto?.stop();
  });

  async function startRun(): Promise<{
    child: ChildProcess;
    output: () => string;
    exited: Promise<number | null>;
    points: string;
  }> {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-shutdown-'));
    const points = join(dir, 'points.lp');
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      `mqtt:\n  url: ${mosquitto.url}\n  clientId: shutdown-${Date.now()}\nmodel:\n  path: ${BUNDLE}\n  engine: tfjs\ninflux:\n  file: ${points}\nhttp:\n  port: 0\n`,
    );
    const child = spawn(process.execPath, [BIN, 'run', '--config', config], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr!.on('data', (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor(() => output.includes('"magwatch started"'), 'magwatch run to start', {
      timeoutMs: 45_000,
      detail: () => output.slice(-2000),
    });
    return { child, output: () => output, exited, points };
  }

  it('flushes and exits 0 within 5 s on SIGTERM while a replay floods it, leaving a complete points file', async () => {
    const run = await startRun();
    const messages = await exampleMessages();
    const replay = publishMessages(messages, { url: mosquitto.url, speed: 0, qos: 1 }).catch(() => undefined);
    // Stop mid-stream: once the first windows have been written.
    await waitFor(() => existsSync(run.points), 'the first points', { timeoutMs: 30_000 });
    const signalledAt = Date.now();
    run.child.kill('SIGTERM');
    const code = await run.exited;
    const stopMs = Date.now() - signalledAt;
    await replay;

    expect(code).toBe(0);
    expect(stopMs).toBeLessThan(5000);
    const lines = run
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const last = lines.at(-1) as {
      msg: string;
      samples: number;
      windowsScored: number;
      points: { written: number; buffered: number; dropped: Record<string, number> };
    };
    expect(last.msg).toBe('magwatch stopped');
    expect(last.points.buffered).toBe(0);
    expect(Object.values(last.points.dropped).every((n) => n === 0)).toBe(true);

    const text = await readFile(run.points, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const pointLines = text.split('\n').slice(0, -1);
    const bad = pointLines.filter((line) => !LINE.test(line));
    expect(bad).toEqual([]);
    expect(pointLines).toHaveLength(last.points.written);
    expect(pointLines.filter((line) => line.startsWith('magwatch_rmse,'))).toHaveLength(last.windowsScored);
    console.info(
      `shutdown under load: exit 0 after ${stopMs} ms, ${last.samples} samples in, ${last.points.written} points flushed, 0 dropped`,
    );
  });

  it('exits at once, non-zero, on a second signal', async () => {
    const run = await startRun();
    const messages = await exampleMessages();
    const replay = publishMessages(messages, { url: mosquitto.url, speed: 0, qos: 1 }).catch(() => undefined);
    await waitFor(() => existsSync(run.points), 'the first points', { timeoutMs: 30_000 });
    const signalledAt = Date.now();
    run.child.kill('SIGTERM');
    run.child.kill('SIGINT');
    const code = await run.exited;
    const exitMs = Date.now() - signalledAt;
    await replay;
    expect(code).not.toBe(0);
    // "At once" means without flushing: the exit code and the missing stop line prove that path. Its latency is
    // the inference batch holding the event loop when the signal comes (inference runs on the main thread):
    // 2-3 s on this two-core machine under load, up to 5 s with the whole suite running beside it.
    expect(exitMs).toBeLessThan(10_000);
    expect(run.output()).toContain('second signal; exiting without flushing');
    expect(run.output()).not.toContain('"magwatch stopped"');
    console.info(`second signal: exit ${code} after ${exitMs} ms`);
  });
});
