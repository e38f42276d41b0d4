import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CONFIG_PATH,
  environmentKeys,
  loadConfig,
  redactConfig,
  redactUrl,
} from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { isMagwatchError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function yamlFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function loadError(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (isMagwatchError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected loadConfig to fail');
}

describe('defaults', () => {
  it('loads config/default.yaml from the package, whatever the working directory', () => {
    const cwd = process.cwd();
    process.chdir(tmpdir());
    try {
      expect(loadConfig(undefined, {})).toEqual(configSchema.parse({}));
    } finally {
      process.chdir(cwd);
    }
  });

  it('gives every key its documented default', () => {
    const config = loadConfig(undefined, {});
    expect(config.mqtt).toMatchObject({
      url: 'mqtt://127.0.0.1:1883',
      topic: 'magwatch/raw/+sensor',
      clean: false,
      qos: 1,
    });
    expect(config.mqtt.clientId).toMatch(/^magwatch-/);
    expect(config.model).toEqual({ path: 'models/site', engine: 'auto' });
    // The time settings stay unset: the detector sizes them from the bundle's cadence (cadenceDefaults).
    expect(config.stream).toEqual({ maxBatch: 256, maxDelayMs: 5, maxQueue: 10_000, minNormal: 3 });
    expect(config.influx).toEqual({
      batchSize: 500,
      flushIntervalMs: 1000,
      maxBufferPoints: 100_000,
      file: 'magwatch-points.lp',
    });
    expect(config.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9464 });
    expect(config.events.topicPrefix).toBe('magwatch');
    expect(config.dashboard.enabled).toBe(false);
    expect(config.log.level).toBe('info');
  });

  it('documents every key of the schema in default.yaml, each with a comment', async () => {
    const text = await readFile(DEFAULT_CONFIG_PATH, 'utf8');
    for (const { path } of environmentKeys().values()) {
      const [section, key] = path.split('.');
      expect(text, section).toMatch(new RegExp(`^${section}:`, 'm'));
      expect(text, path).toMatch(new RegExp(`^ {2}(# )?${key}: .*# \\S`, 'm'));
    }
  });

  it('returns a deep-frozen object', () => {
    const config = loadConfig(undefined, {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.stream)).toBe(true);
    expect(() => {
      (config.stream as { maxBatch: number }).maxBatch = 1;
    }).toThrow(TypeError);
  });

  it('loads the site example', () => {
    const config = loadConfig(join(DEFAULT_CONFIG_PATH, '..', 'site.example.yaml'), {});
    expect(config.mqtt.subscriptions?.[0]).toMatchObject({
      topic: 'impf/ESK/+cadence/+level/+elements',
      format: 'impf',
      group: 'OBS1',
    });
    expect(config.influx.url).toBe('http://influxdb.site.example:8086/magwatch');
  });
});

describe('YAML and environment', () => {
  it('reads a YAML file and lets the environment override it', async () => {
    const path = await yamlFile(
      'site.yaml',
      'mqtt:\n  url: mqtt://broker:1883\n  topic: a/+sensor\nstream:\n  maxBatch: 64\nhttp:\n  port: 8080\n',
    );
    const config = loadConfig(path, {
      MAGWATCH_MQTT_URL: 'mqtts://other:8883',
      MAGWATCH_STREAM_MAX_BATCH: '128',
      MAGWATCH_STREAM_LATENESS_MS: '10_000',
      MAGWATCH_MQTT_CLEAN: 'yes',
      MAGWATCH_MQTT_QOS: '2',
      MAGWATCH_HTTP_PORT: '0',
      MAGWATCH_DASHBOARD_ENABLED: 'TRUE',
      MAGWATCH_EVENTS_TOPIC_PREFIX: 'site/magwatch',
      MAGWATCH_MQTT_SUBSCRIPTIONS: '[{"topic": "impf/+iaga/+cadence/+level/+elements", "format": "impf"}]',
    });
    expect(config.mqtt).toMatchObject({ url: 'mqtts://other:8883', topic: 'a/+sensor', clean: true, qos: 2 });
    expect(config.mqtt.subscriptions).toEqual([
      { topic: 'impf/+iaga/+cadence/+level/+elements', format: 'impf', qos: 1 },
    ]);
    expect(config.stream).toMatchObject({ maxBatch: 128, latenessMs: 10_000 });
    expect(config.http.port).toBe(0);
    expect(config.dashboard.enabled).toBe(true);
    expect(config.events.topicPrefix).toBe('site/magwatch');
  });

  it('takes the DESIGN names, MAGWATCH_MODEL winning over MAGWATCH_MODEL_PATH', () => {
    const config = loadConfig(undefined, {
      MAGWATCH_MODEL: 'models/a',
      MAGWATCH_MODEL_PATH: 'models/b',
      MAGWATCH_MQTT_TOPIC: 'x/+sensor',
      MAGWATCH_MQTT_USERNAME: 'reader',
      MAGWATCH_MQTT_PASSWORD: 'pw',
      MAGWATCH_INFLUX_URL: 'http://127.0.0.1:8086/magwatch',
      MAGWATCH_HTTP_PORT: '9000',
    });
    expect(config.model.path).toBe('models/a');
    expect(config.mqtt).toMatchObject({ topic: 'x/+sensor', username: 'reader', password: 'pw' });
    expect(config.influx.url).toBe('http://127.0.0.1:8086/magwatch');
    expect(config.http.port).toBe(9000);
  });

  it('reads secrets from _FILE variables, less the trailing newline', async () => {
    const secret = await yamlFile('mqtt_password', 's3cret with spaces \n');
    const token = await yamlFile('token', 'tok\r\n');
    const config = loadConfig(undefined, {
      MAGWATCH_MQTT_PASSWORD_FILE: secret,
      MAGWATCH_HTTP_TOKEN_FILE: token,
    });
    expect(config.mqtt.password).toBe('s3cret with spaces ');
    expect(config.http.token).toBe('tok');
  });

  it('treats MAGWATCH_INFLUX_FILE as the influx.file key, not a secret file', () => {
    expect(loadConfig(undefined, { MAGWATCH_INFLUX_FILE: 'out.lp' }).influx.file).toBe('out.lp');
  });

  it('warns about unknown MAGWATCH_ variables and an open HTTP server without a token', () => {
    const warnings: string[] = [];
    loadConfig(
      undefined,
      { MAGWATCH_STREAM_MAXBATCH: '1', MAGWATCH_CONFIG: 'x', MAGWATCH_HTTP_HOST: '0.0.0.0' },
      {
        warn: (m) => warnings.push(m),
      },
    );
    expect(warnings).toEqual([
      'environment variable MAGWATCH_STREAM_MAXBATCH is not a magwatch setting; it is ignored',
      'http.host is 0.0.0.0 and http.token is unset: /metrics and /readyz are open to the network; set MAGWATCH_HTTP_TOKEN',
    ]);
  });

  it('treats an empty YAML key as unset', async () => {
    const path = await yamlFile('empty-key.yaml', 'influx:\n  url:\nmqtt:\n  username:\n');
    const config = loadConfig(path, {});
    expect(config.influx.url).toBeUndefined();
    expect(config.mqtt.username).toBeUndefined();
  });
});

describe('validation errors', () => {
  it('names a single problem in one line', async () => {
    const path = await yamlFile('one.yaml', 'stream:\n  maxBatch: 0\n');
    const error = loadError(() => loadConfig(path, {}));
    expect(error.code).toBe('MW_CONFIG_INVALID');
    expect(error.message).not.toContain('\n');
    expect(error.message).toBe(
      `configuration ${path} is invalid: stream.maxBatch: Too small: expected number to be >0`,
    );
  });

  it('reports every invalid key at once, with the variable that set it', async () => {
    const path = await yamlFile(
      'many.yaml',
      'mqtt:\n  url: http://broker\n  qos: 3\n  colour: blue\nstream:\n  bucketMs: -1\nmodel:\n  engine: gpu\nextra: 1\ninflux:\n  batchSize: 1000\n  maxBufferPoints: 10\n',
    );
    const error = loadError(() =>
      loadConfig(path, {
        MAGWATCH_STREAM_MAX_BATCH: 'lots',
        MAGWATCH_HTTP_PORT: '70000',
        MAGWATCH_LOG_LEVEL: 'loud',
        MAGWATCH_MQTT_PASSWORD: '',
      }),
    );
    const lines = error.message.split('\n');
    expect(lines[0]).toBe(`configuration ${path} has ${lines.length - 1} problems:`);
    const problems = lines.slice(1).map((l) => l.trim());
    const keys = problems.map((l) => l.slice(0, l.indexOf(':')));
    expect(new Set(keys)).toEqual(
      new Set([
        'mqtt.url',
        'mqtt.qos',
        'mqtt.colour',
        'mqtt.password',
        'stream.bucketMs',
        'stream.maxBatch',
        'model.engine',
        'extra',
        'http.port',
        'log.level',
        'influx.maxBufferPoints',
      ]),
    );
    expect(problems).toContain(
      'stream.maxBatch: Invalid input: expected number, received string (set by MAGWATCH_STREAM_MAX_BATCH="lots")',
    );
    expect(problems.find((p) => p.startsWith('mqtt.colour'))).toMatch(
      /unknown key; known keys: url, topic, format/,
    );
    expect(problems.find((p) => p.startsWith('mqtt.password'))).toMatch(/\(set by MAGWATCH_MQTT_PASSWORD\)$/);
    expect(problems.find((p) => p.startsWith('influx.maxBufferPoints'))).toMatch(
      /at least influx.batchSize \(1000\)/,
    );
  });

  it('names an unreadable _FILE and a variable set twice', () => {
    const error = loadError(() =>
      loadConfig(undefined, {
        MAGWATCH_INFLUX_PASSWORD_FILE: join(dir, 'missing'),
        MAGWATCH_HTTP_TOKEN: 'a',
        MAGWATCH_HTTP_TOKEN_FILE: join(dir, 'x'),
      }),
    );
    expect(error.message).toContain(
      `influx.password: MAGWATCH_INFLUX_PASSWORD_FILE names ${join(dir, 'missing')}, which cannot be read (ENOENT)`,
    );
    expect(error.message).toContain(
      'http.token: both MAGWATCH_HTTP_TOKEN and MAGWATCH_HTTP_TOKEN_FILE are set; keep one',
    );
  });

  it('rejects a missing file, bad YAML and a YAML list', async () => {
    expect(loadError(() => loadConfig(join(dir, 'nope.yaml'), {})).code).toBe('MW_CONFIG_MISSING');
    const bad = await yamlFile('bad.yaml', 'mqtt:\n  url: [unclosed\n');
    const yamlError = loadError(() => loadConfig(bad, {}));
    expect(yamlError.code).toBe('MW_CONFIG_YAML');
    expect(yamlError.message).toMatch(new RegExp(`^configuration file ${bad}:\\d+ is not valid YAML`));
    const list = await yamlFile('list.yaml', '- a\n- b\n');
    expect(loadError(() => loadConfig(list, {})).message).toContain('must be a YAML mapping');
  });

  it('requires mqtt.key with mqtt.cert', () => {
    expect(loadError(() => loadConfig(undefined, { MAGWATCH_MQTT_CERT: '/etc/c.pem' })).message).toMatch(
      /is invalid: mqtt.key: mqtt.cert and mqtt.key go together; set both or neither$/,
    );
  });

  it('rejects a bad JSON list in the environment', () => {
    expect(loadError(() => loadConfig(undefined, { MAGWATCH_MQTT_SUBSCRIPTIONS: '[{' })).message).toContain(
      'mqtt.subscriptions: MAGWATCH_MQTT_SUBSCRIPTIONS is not valid JSON',
    );
  });
});

describe('redaction', () => {
  it('hides passwords, tokens and URL userinfo', () => {
    const config = loadConfig(undefined, {
      MAGWATCH_MQTT_URL: 'mqtts://user:pw@broker:8883',
      MAGWATCH_MQTT_USERNAME: 'user',
      MAGWATCH_MQTT_PASSWORD: 'pw',
      MAGWATCH_INFLUX_URL: 'http://writer:secret@influx:8086/magwatch',
      MAGWATCH_INFLUX_PASSWORD: 'secret2',
      MAGWATCH_HTTP_TOKEN: 'tok',
    });
    const redacted = redactConfig(config) as typeof config;
    expect(redacted.mqtt).toMatchObject({
      url: 'mqtts://***@broker:8883',
      username: 'user',
      password: '***',
    });
    expect(redacted.influx).toMatchObject({ url: 'http://***@influx:8086/magwatch', password: '***' });
    expect(redacted.http.token).toBe('***');
    const text = JSON.stringify(redacted);
    for (const secret of ['pw', 'secret', 'secret2', 'tok']) expect(text).not.toContain(`"${secret}"`);
    expect(text).not.toMatch(/secret|:pw@/);
    expect(config.mqtt.password).toBe('pw');
  });

  it('leaves unset secrets unset and URLs without userinfo alone', () => {
    const redacted = redactConfig(loadConfig(undefined, {})) as { mqtt: { password?: string; url: string } };
    expect(redacted.mqtt.password).toBeUndefined();
    expect(redacted.mqtt.url).toBe('mqtt://127.0.0.1:1883');
    expect(redactUrl('ws://a@b/c')).toBe('ws://***@b/c');
    expect(redactUrl('not a url @ all')).toBe('not a url @ all');
  });
});
