import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxWriter, type InfluxWriterOptions, parseInfluxUrl } from '../../src/sinks/influx.js';
import { FileSink } from '../../src/sinks/line-protocol.js';
import { INTEGER_FIELDS, rmsePoint, votePoint } from '../../src/sinks/points.js';
import type { Point, WindowScore } from '../../src/stream/types.js';
import { type Influxd, startInfluxd } from '../helpers/influxd.js';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturedLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines, messages: () => lines.map((l) => l.msg) };
}

function score(i: number, sensor = 'S1_OBS1_1'): WindowScore {
  return {
    channel: `${sensor}__b_x`,
    sensor,
    component: 'b_x',
    group: 'OBS1',
    start: 1_700_000_000_000 + i * 1000 - 630,
    end: 1_700_000_000_000 + i * 1000,
    rmse: i + 0.5,
    threshold: 2,
    anomalous: i + 0.5 > 2,
  };
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('InfluxWriter against influxd', () => {
  let server: Influxd;
  let databases = 0;

  beforeAll(async () => {
    server = await startInfluxd();
  });
  afterAll(async () => {
    await server?.stop();
  });

  function writer(options: Partial<InfluxWriterOptions> & { logger: InfluxWriterOptions['logger'] }) {
    databases++;
    const database = `test${databases}`;
    const client = new InfluxDB({ host: '127.0.0.1', port: server.port, database });
    const sink = new InfluxWriter({
      url: `${server.url}/${database}`,
      retryInitialMs: 50,
      retryMaxMs: 200,
      ...options,
    });
    const rows = async (query = 'SELECT * FROM magwatch_rmse') => {
      try {
        return (await client.query(query)) as unknown as Array<Record<string, unknown>>;
      } catch {
        return [];
      }
    };
    return { sink, rows };
  }

  it('creates the database and writes every point with its tags intact', async () => {
    const { logger } = capturedLogger();
    const { sink, rows } = writer({ logger, batchSize: 4, flushIntervalMs: 50 });
    const sensors = ['S/1+#', 'OBS 1 a,b=c', 'q"uote\\x', 'Ωmega-ü'];
    const scores = sensors.flatMap((sensor, s) => [0, 1, 2].map((i) => score(s * 3 + i, sensor)));
    sink.write(scores.map(rmsePoint));
    await sink.close();

    const found = await rows();
    expect(found).toHaveLength(scores.length);
    expect(new Set(found.map((r) => r['sensor']))).toEqual(new Set(sensors));
    const first = found.find((r) => r['rmse'] === 0.5)!;
    expect(first).toMatchObject({ channel: 'S/1+#__b_x', component: 'b_x', group: 'OBS1', anomalous: false });
    expect((first['time'] as Date).getTime()).toBe(score(0).end);
    expect(sink.stats()).toEqual({
      written: 12,
      retried: 0,
      buffered: 0,
      dropped: { overflow: 0, rejected: 0, invalid: 0, failed: 0, closed: 0 },
    });
  });

  it('accepts a FileSink file as it is, in nanosecond precision', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'magwatch-lp-'));
    try {
      const path = join(dir, 'points.lp');
      const file = new FileSink({ path, integerFields: INTEGER_FIELDS });
      file.write([rmsePoint(score(1, 'S 1,"x"=y')), rmsePoint(score(2))]);
      file.write([
        votePoint({ group: 'OBS1', start: 1_700_000_000_000, votes: 5, required: 5, anomalous: true }),
      ]);
      await file.close();

      const client = new InfluxDB({ host: '127.0.0.1', port: server.port, database: 'fromfile' });
      await client.createDatabase('fromfile');
      const response = await fetch(`${server.url}/write?db=fromfile`, {
        method: 'POST',
        body: await readFile(path),
      });
      expect(response.status).toBe(204);
      const rmse = (await client.query('SELECT * FROM magwatch_rmse')) as unknown as Array<
        Record<string, unknown>
      >;
      expect(rmse.map((r) => r['sensor'])).toEqual(['S 1,"x"=y', 'S1_OBS1_1']);
      expect((rmse[0]!['time'] as Date).getTime()).toBe(score(1).end);
      const votes = (await client.query('SELECT * FROM magwatch_votes')) as unknown as Array<
        Record<string, unknown>
      >;
      expect(votes).toHaveLength(1);
      expect(votes[0]).toMatchObject({ group: 'OBS1', votes: 5, required: 5, anomalous: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('flushes a partial batch after flushIntervalMs', async () => {
    const { logger } = capturedLogger();
    const { sink, rows } = writer({ logger, batchSize: 100, flushIntervalMs: 100 });
    sink.write([rmsePoint(score(1))]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(sink.stats().written).toBe(0);
    await waitFor(() => sink.stats().written === 1);
    expect(await rows()).toHaveLength(1);
    await sink.close();
  });

  it('counts points InfluxDB rejects and does not retry them', async () => {
    const { logger, lines } = capturedLogger();
    const { sink, rows } = writer({ logger, batchSize: 3, flushIntervalMs: 20 });
    sink.write([rmsePoint(score(1))]);
    await waitFor(() => sink.stats().written === 1);
    // A string into a float field is a type conflict: InfluxDB writes the rest and says how many it dropped.
    const conflict: Point = { ...rmsePoint(score(2)), fields: { rmse: 'high' } };
    sink.write([conflict, rmsePoint(score(3)), rmsePoint(score(4))]);
    await sink.close();

    expect(sink.stats()).toMatchObject({ written: 3, retried: 0, dropped: { rejected: 1 } });
    expect(await rows()).toHaveLength(3);
    expect(lines.filter((l) => l.msg === 'influxdb rejected points; not retrying')).toHaveLength(1);
  });

  it('buffers through an outage and delivers every point when InfluxDB returns', async () => {
    const { logger, messages } = capturedLogger();
    const { sink, rows } = writer({ logger, batchSize: 5, flushIntervalMs: 20 });
    sink.write([rmsePoint(score(0))]);
    await waitFor(() => sink.stats().written === 1);

    await server.halt();
    for (let i = 1; i <= 12; i++) sink.write([rmsePoint(score(i))]);
    await waitFor(() => sink.stats().retried >= 2);
    expect(sink.stats().buffered).toBe(12);
    await server.resume();
    await waitFor(() => sink.stats().written === 13);
    await sink.close();

    expect(await rows()).toHaveLength(13);
    expect(sink.stats().dropped).toEqual({ overflow: 0, rejected: 0, invalid: 0, failed: 0, closed: 0 });
    expect(messages().filter((m) => m.startsWith('influxdb'))).toEqual([
      'influxdb unavailable; buffering points',
      'influxdb recovered',
    ]);
  });

  it('drops the oldest points past maxBufferPoints and logs it once per outage', async () => {
    const { logger, lines, messages } = capturedLogger();
    const { sink, rows } = writer({ logger, batchSize: 5, flushIntervalMs: 20, maxBufferPoints: 10 });
    sink.write([rmsePoint(score(0))]);
    await waitFor(() => sink.stats().written === 1);

    // Each outage: one batch fails first, then more points than the bound arrive one at a time.
    await server.halt();
    for (let i = 1; i <= 5; i++) sink.write([rmsePoint(score(i))]);
    await waitFor(() => sink.stats().retried >= 1);
    for (let i = 6; i <= 25; i++) sink.write([rmsePoint(score(i))]);
    await waitFor(() => sink.stats().retried >= 2);
    expect(sink.stats()).toMatchObject({ buffered: 10, dropped: { overflow: 15 } });
    await server.resume();
    await waitFor(() => sink.stats().written === 11);

    await server.halt();
    const retried = sink.stats().retried;
    for (let i = 26; i <= 30; i++) sink.write([rmsePoint(score(i))]);
    await waitFor(() => sink.stats().retried > retried);
    for (let i = 31; i <= 40; i++) sink.write([rmsePoint(score(i))]);
    await server.resume();
    await sink.close();

    const kept = (await rows()).map((r) => r['rmse']);
    const expected = [0, ...range(16, 25), ...range(31, 40)].map((i) => i + 0.5);
    expect(kept.sort((a, b) => Number(a) - Number(b))).toEqual(expected);
    expect(sink.stats()).toMatchObject({ written: 21, buffered: 0, dropped: { overflow: 20 } });
    expect(messages().filter((m) => m === 'influxdb buffer full; dropping oldest points')).toHaveLength(2);
    const recovered = lines.filter((l) => l.msg === 'influxdb recovered');
    expect(recovered.map((l) => l['dropped'])).toEqual([15, 5]);
  });

  it('gives up at closeTimeoutMs and counts what is left as closed', async () => {
    const { logger, messages } = capturedLogger();
    const { sink } = writer({ logger, batchSize: 5, flushIntervalMs: 20, closeTimeoutMs: 300 });
    await server.halt();
    try {
      sink.write([1, 2, 3].map((i) => rmsePoint(score(i))));
      await sink.close();
      sink.write([rmsePoint(score(4))]);
      expect(sink.stats()).toMatchObject({ written: 0, buffered: 0, dropped: { closed: 4 } });
      expect(messages()).toContain('influxdb writer closed with points unwritten');
    } finally {
      await server.resume();
    }
  });
});

describe('InfluxWriter retry decisions', () => {
  const ok = () => new Response(null, { status: 204 });
  const failure = (status: number, error: string, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify({ error }), { status, headers });

  function fakeWriter(answers: Array<() => Response>, extra: Partial<InfluxWriterOptions> = {}) {
    const { logger, lines } = capturedLogger();
    const bodies: string[] = [];
    const fetch = (async (_url: unknown, init?: RequestInit) => {
      bodies.push(String(init?.body));
      const answer = answers.shift() ?? ok;
      return answer();
    }) as typeof globalThis.fetch;
    const sink = new InfluxWriter({
      url: 'http://127.0.0.1:1/db',
      createDatabase: false,
      batchSize: 2,
      flushIntervalMs: 10,
      retryInitialMs: 10,
      logger,
      fetch,
      ...extra,
    });
    return { sink, bodies, lines };
  }

  it('doubles the retry delay up to retryMaxMs, with jitter of up to half', async () => {
    const delays: number[] = [];
    const pending: Array<() => void> = [];
    const timers = {
      setTimeout(callback: () => void, ms: number) {
        delays.push(ms);
        pending.push(callback);
        return pending.length;
      },
      clearTimeout() {},
    };
    const randoms = [0, 0.5, 0.999, 0, 0];
    const { sink } = fakeWriter(
      Array.from({ length: 5 }, () => () => failure(503, 'busy')),
      { batchSize: 1, retryInitialMs: 100, retryMaxMs: 500, timers, random: () => randoms.shift()! },
    );
    sink.write([rmsePoint(score(1))]);
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    for (let attempt = 0; attempt < 5; attempt++) {
      await settle();
      pending.shift()?.();
    }
    await settle();
    expect(delays.map(Math.round)).toEqual([50, 150, 400, 250, 250]);
    expect(sink.stats()).toMatchObject({ written: 1, retried: 5 });
  });

  it('counts a batch still in flight at the close deadline as closed, and takes it back if it lands', async () => {
    let answer: (response: Response) => void = () => {};
    const { sink } = fakeWriter([], {
      closeTimeoutMs: 20,
      fetch: (() => new Promise<Response>((resolve) => (answer = resolve))) as typeof globalThis.fetch,
    });
    sink.write([1, 2].map((i) => rmsePoint(score(i))));
    await sink.close();
    expect(sink.stats()).toMatchObject({ written: 0, buffered: 0, dropped: { closed: 2 } });
    answer(ok());
    await waitFor(() => sink.stats().written === 2);
    expect(sink.stats().dropped.closed).toBe(0);
  });

  it('retries a 429 after Retry-After and a 503 with back-off', async () => {
    const { sink, bodies } = fakeWriter([
      () => failure(429, 'slow down', { 'retry-after': '0' }),
      () => failure(503, 'busy'),
    ]);
    sink.write([rmsePoint(score(1)), rmsePoint(score(2))]);
    await waitFor(() => sink.stats().written === 2);
    await sink.close();
    expect(sink.stats().retried).toBe(2);
    expect(new Set(bodies).size).toBe(1);
    expect(bodies).toHaveLength(3);
  });

  it('drops a 4xx batch, logging one line per distinct cause', async () => {
    const { sink, lines } = fakeWriter([
      () => failure(401, 'authorization failed'),
      () => failure(401, 'authorization failed'),
      () => failure(400, 'bad timestamp'),
    ]);
    for (let i = 0; i < 6; i++) sink.write([rmsePoint(score(i))]);
    await sink.close();
    expect(sink.stats()).toMatchObject({ written: 0, retried: 0, dropped: { rejected: 6 } });
    expect(lines.filter((l) => l.level === 50).map((l) => [l['status'], l['err']])).toEqual([
      [401, 'authorization failed'],
      [400, 'bad timestamp'],
    ]);
  });

  it('sends credentials from the URL as basic authentication', async () => {
    let authorization: string | null = null;
    const { logger } = capturedLogger();
    const sink = new InfluxWriter({
      url: 'http://writer:s%3Acret@127.0.0.1:1/db',
      createDatabase: false,
      logger,
      fetch: (async (_url: unknown, init?: RequestInit) => {
        authorization = new Headers(init?.headers).get('authorization');
        return ok();
      }) as typeof globalThis.fetch,
    });
    sink.write([rmsePoint(score(1))]);
    await sink.close();
    expect(authorization).toBe(`Basic ${Buffer.from('writer:s:cret').toString('base64')}`);
  });
});

describe('parseInfluxUrl', () => {
  it('takes the last path segment as the database', () => {
    expect(parseInfluxUrl('https://u:p@influx.example:8443/proxy/influx/magwatch')).toMatchObject({
      protocol: 'https',
      hostname: 'influx.example',
      port: 8443,
      prefix: '/proxy/influx',
      database: 'magwatch',
      username: 'u',
      password: 'p',
    });
  });

  it.each([
    ['http://127.0.0.1:8086', 'names no database'],
    ['ftp://127.0.0.1/db', 'scheme is ftp:'],
    ['not a url', 'not a URL'],
  ])('rejects %s', (url, problem) => {
    expect(() => parseInfluxUrl(url)).toThrow(problem);
  });

  it('hides credentials in its error', () => {
    expect(() => parseInfluxUrl('ftp://user:secret@host/db')).toThrow(/\/\/\*\*\*@host/);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
