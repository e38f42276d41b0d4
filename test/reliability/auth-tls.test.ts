/**
 * Secrets and access: a mosquitto with a password file and a TLS listener (a throwaway CA made with openssl,
 * client certificates required), `magwatch run` connecting with credentials read from files, a wrong password
 * failing fast, no secret in any log line, and the HTTP endpoints on loopback behind the token.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/ports.js';
import { BUNDLE, connectClient, exampleMessages, publishAll, startService, waitFor } from './helpers.js';

const execFileAsync = promisify(execFile);
const BIN = join(ROOT, 'bin/magwatch.js');

const USER = 'magwatch';
const PASSWORD = 'pw-Zq8!tls-s3cret';
const HTTP_TOKEN = 'tok-9f3k2-http-s3cret';
const INFLUX_PASSWORD = 'influx-Xy7-s3cret';

/** A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate signed by it. */
async function makeCertificates(dir: string): Promise<void> {
  const openssl = (args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  await openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=magwatch test CA'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ]),
  );
  for (const [name, subject] of [
    ['server', '/CN=127.0.0.1'],
    ['client', '/CN=magwatch-client'],
  ] as const) {
    await openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      subject,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ]);
    await writeFile(
      join(dir, `${name}.ext`),
      name === 'server' ? 'subjectAltName=IP:127.0.0.1\n' : 'extendedKeyUsage=clientAuth\n',
    );
    await openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ]),
    );
  }
}

interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function spawnMagwatch(args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('broker credentials, TLS and secrets', () => {
  let dir: string;
  let mosquitto: Mosquitto;
  let tlsUrl: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-tls-'));
    await makeCertificates(dir);
    const tlsPort = await freePort();
    mosquitto = await startMosquitto({
      users: { [USER]: PASSWORD },
      config: [
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${join(dir, 'ca.pem')}`,
        `certfile ${join(dir, 'server.pem')}`,
        `keyfile ${join(dir, 'server.key')}`,
        'require_certificate true',
        'tls_version tlsv1.2',
      ].join('\n'),
    });
    tlsUrl = `mqtts://127.0.0.1:${tlsPort}`;
    await writeFile(join(dir, 'password'), `${PASSWORD}\n`);
    await writeFile(join(dir, 'token'), `${HTTP_TOKEN}\n`);
    await writeFile(
      join(dir, 'config.yaml'),
      [
        'mqtt:',
        `  url: ${tlsUrl}`,
        `  username: ${USER}`,
        `  ca: ${join(dir, 'ca.pem')}`,
        `  cert: ${join(dir, 'client.pem')}`,
        `  key: ${join(dir, 'client.key')}`,
        '  clientId: magwatch-tls-test',
        'model:',
        `  path: ${BUNDLE}`,
        '  engine: tfjs',
        'influx:',
        `  file: ${join(dir, 'points.lp')}`,
        'http:',
        '  port: 0',
        'dashboard:',
        '  enabled: true',
        'log:',
        '  level: debug',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await mosquitto?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const secretEnv = () => ({
    MAGWATCH_MQTT_PASSWORD_FILE: join(dir, 'password'),
    MAGWATCH_HTTP_TOKEN_FILE: join(dir, 'token'),
    MAGWATCH_INFLUX_PASSWORD: INFLUX_PASSWORD,
  });

  it('runs over mqtts:// with a client certificate and a password from a file, and never logs a secret', async () => {
    const run = spawnMagwatch(['run', '--config', join(dir, 'config.yaml')], secretEnv());
    children.push(run.child);
    await waitFor(() => run.output().includes('"magwatch started"'), 'magwatch run to start', {
      timeoutMs: 45_000,
      detail: () => run.output().slice(-2000),
    });
    const started = run
      .output()
      .split('\n')
      .find((line) => line.includes('"magwatch started"'))!;
    const httpUrl = (JSON.parse(started) as { http: string }).http;
    expect(httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    // The token guards the metrics and the dashboard, not the liveness probe.
    expect((await fetch(`${httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${httpUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${httpUrl}/`)).status).toBe(401);
    expect((await fetch(`${httpUrl}/snapshot`)).status).toBe(401);
    expect((await fetch(`${httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(
      401,
    );
    const authorized = { headers: { authorization: `Bearer ${HTTP_TOKEN}` } };
    expect((await fetch(`${httpUrl}/metrics`, authorized)).status).toBe(200);
    expect((await fetch(`${httpUrl}/`, authorized)).status).toBe(200);
    expect((await fetch(`${httpUrl}/metrics?token=${HTTP_TOKEN}`)).status).toBe(200);

    // Samples flow over TLS: a publisher with the same credentials and its own client certificate.
    const publisher = await connectClient(tlsUrl, {
      username: USER,
      password: PASSWORD,
      ca: await readFile(join(dir, 'ca.pem')),
      cert: await readFile(join(dir, 'client.pem')),
      key: await readFile(join(dir, 'client.key')),
    });
    await publishAll(publisher, (await exampleMessages()).slice(0, 300));
    await publisher.endAsync();
    await waitFor(
      async () => {
        const text = await (await fetch(`${httpUrl}/metrics`, authorized)).text();
        return /^magwatch_ingest_samples_total 300$/m.test(text);
      },
      'the samples over TLS',
      { timeoutMs: 15_000 },
    );

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const output = run.output();
    expect(output).toContain('"mqtt connected"');
    for (const secret of [PASSWORD, HTTP_TOKEN, INFLUX_PASSWORD]) {
      expect(output.includes(secret), `secret ${secret.slice(0, 3)}… in the log`).toBe(false);
    }
  });

  it('fails fast with a one-line message on a wrong password, and does not print it', async () => {
    const wrong = 'wrong-pw-Kd93-s3cret';
    const startedAt = Date.now();
    const run = spawnMagwatch(['run', '--config', join(dir, 'config.yaml')], {
      ...secretEnv(),
      MAGWATCH_MQTT_PASSWORD_FILE: undefined,
      MAGWATCH_MQTT_PASSWORD: wrong,
    });
    children.push(run.child);
    const code = await Promise.race([
      run.exited,
      new Promise((resolve) => setTimeout(() => resolve('hung'), 20_000)),
    ]);
    if (code === 'hung') run.child.kill('SIGKILL');
    const elapsedMs = Date.now() - startedAt;
    expect(code).not.toBe('hung');
    expect(code).not.toBe(0);
    const errorLines = run
      .output()
      .split('\n')
      .filter((line) => line.startsWith('magwatch: '));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(/refused the connection.*(username|password)/);
    expect(run.output()).not.toContain(wrong);
    console.info(`wrong password: exit ${code} after ${elapsedMs} ms: ${errorLines[0]}`);
  });

  it('releases what it opened when the broker refuses it at start', async () => {
    const port = await freePort();
    const refused = startService({
      mqtt: { url: mosquitto.url, username: USER, password: 'not-the-password' },
      http: { port },
    });
    await expect(refused).rejects.toThrow(/refused the connection/);
    // The HTTP server started before the broker said no; a failed start must close it (and the event client).
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    expect(free, `port ${port} still held after the failed start`).toBe(true);
  });

  it('binds the HTTP endpoints to loopback by default', async () => {
    const plain = await startMosquitto();
    const running = await startService({ mqtt: { url: plain.url } }).catch(async (error) => {
      await plain.stop();
      throw error;
    });
    try {
      const { http } = running.service;
      expect(http!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const external = Object.values(networkInterfaces())
        .flat()
        .find((address) => address && address.family === 'IPv4' && !address.internal);
      if (external) {
        const refused = await fetch(`http://${external.address}:${http!.port}/healthz`).then(
          () => false,
          () => true,
        );
        expect(refused, `reachable on ${external.address}`).toBe(true);
      }
    } finally {
      await running.stop();
      await plain.stop();
    }
  });
});
