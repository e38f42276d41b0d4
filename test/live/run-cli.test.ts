/**
 * `magwatch run` as a process (DESIGN section 4, Operations): it starts from a YAML file, detects on a replayed
 * feed, and on SIGTERM stops ingest, flushes, logs its last line and exits 0 within 5 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ROOT } from '../helpers/cli.js';
import { ANOMALIES_CSV, EXAMPLE_BUNDLE, replayFile, waitFor } from '../helpers/live.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const STOP_LIMIT_MS = 5000;

let broker: Mosquitto;
let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'magwatch-run-'));
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('magwatch run', () => {
  it('detects on a replayed feed and stops on SIGTERM with exit code 0 and its last log line', async () => {
    const configPath = join(dir, 'site.yaml');
    const pointsPath = join(dir, 'points.lp');
    await writeFile(
      configPath,
      stringify({
        mqtt: { url: broker.url, clientId: `magwatch-run-test-${process.pid}`, clean: true },
        model: { path: EXAMPLE_BUNDLE, engine: 'tfjs' },
        stream: { bucketMs: 1000, maxGapMs: 3_600_000, silentAfterMs: 3_600_000 },
        influx: { file: pointsPath, flushIntervalMs: 100 },
        http: { enabled: true, port: 0 },
      }),
    );
    // Environment overrides would beat the file; the test's own environment must not leak into the process.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('MAGWATCH_')),
    );
    const started = spawn(process.execPath, [join(ROOT, 'bin/magwatch.js'), 'run', '--config', configPath], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    let stdout = '';
    let stderr = '';
    started.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    started.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => started.once('exit', (code) => resolve(code)));
    const logLines = () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const progress = () => `exit ${started.exitCode}\nstdout:\n${stdout}\nstderr:\n${stderr}`;

    await waitFor(
      () => logLines().some((l) => l['msg'] === 'magwatch started'),
      "'magwatch started'",
      45_000,
      progress,
    );
    const http = logLines().find((l) => l['msg'] === 'magwatch started')!['http'] as string;
    expect(http).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);

    // One window per message: at --speed 0, single samples would outrun mosquitto's default queue of 1000
    // QoS 1 messages per client while the process is busy scoring, and the broker drops the excess.
    await replayFile(ANOMALIES_CSV, broker.url, 64);
    // Metrics are synced once a second; the window counter says when the whole feed has been scored.
    let windows = 0;
    try {
      await waitFor(
        async () => {
          const text = await (await fetch(`${http}/metrics`)).text();
          windows = Number(/^magwatch_windows_scored_total (\d+)/m.exec(text)?.[1] ?? 0);
          return windows >= 144;
        },
        '144 windows on /metrics',
        45_000,
        () => `${windows} windows; ${progress()}`,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\nmosquitto log:\n${await broker.log()}`);
    }

    const signalledAt = Date.now();
    started.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_LIMIT_MS + 2000)),
    ]);
    const stopMs = Date.now() - signalledAt;
    expect(code, progress()).toBe(0);
    expect(stopMs).toBeLessThan(STOP_LIMIT_MS);

    const last = logLines().at(-1)!;
    expect(last['msg']).toBe('magwatch stopped');
    expect(last).toMatchObject({ windowsScored: 144, samples: 3072 });

    const points = (await readFile(pointsPath, 'utf8')).trim().split('\n');
    expect(points.filter((line) => line.startsWith('magwatch_rmse,'))).toHaveLength(144);
    expect(points.filter((line) => line.startsWith('magwatch_votes,group=global '))).toHaveLength(1024);
    expect(points.some((line) => line.startsWith('magwatch_events,'))).toBe(true);
  });
});
