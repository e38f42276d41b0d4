import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerRun } from '../../src/cli/run.js';
import { registerSimulate } from '../../src/cli/simulate.js';
import { registerTrain } from '../../src/cli/train.js';
import { environmentKeys, loadConfig } from '../../src/config/load.js';
import { DEFAULT_SIMULATE_TOPIC } from '../../src/sim/publish.js';
import {
  COMPOSE_CONFIG_PATH,
  DESIGN_ENV_NAMES,
  flags,
  MOSQUITTO_CONF_PATH,
  parseMount,
  parsePort,
  REPO,
  readCompose,
  readText,
  service,
  stringValues,
} from './stack.js';

const compose = readCompose();
const magwatch = service(compose, 'magwatch');
const environment = magwatch.environment ?? {};

/** Host paths that the stack creates when it runs, so they are not in the repository (and are git-ignored). */
const CREATED_AT_RUN_TIME = new Set(['./models']);

function mosquittoListenerPort(): number {
  const line = readText(MOSQUITTO_CONF_PATH)
    .split('\n')
    .find((l) => /^listener\s/.test(l));
  return Number(line?.split(/\s+/)[1]);
}

/** The shell command line of a service run through `/bin/sh -c`. */
function shellCommand(name: string): string {
  const entry = service(compose, name);
  expect(entry.entrypoint, `${name} runs its command through a shell`).toEqual(['/bin/sh', '-c']);
  expect(entry.command).toHaveLength(1);
  return entry.command![0]!;
}

/** Each `magwatch.js <command> …` invocation of a shell command line, split on `;`. */
function invocations(commandLine: string, command: string): string[] {
  return commandLine
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part.includes(`/app/bin/magwatch.js ${command} `));
}

function knownOptions(register: (program: Command) => void): Set<string> {
  const program = new Command('magwatch');
  register(program);
  return new Set(program.commands[0]!.options.map((o) => o.long!));
}

describe('docker-compose.yml', () => {
  it('has the operator stack by default and the trainer and simulator behind profiles', () => {
    const byDefault = Object.entries(compose.services)
      .filter(([, s]) => !s.profiles)
      .map(([name]) => name)
      .sort();
    expect(byDefault).toEqual(['grafana', 'influxdb', 'magwatch', 'mosquitto']);
    expect(service(compose, 'trainer').profiles).toEqual(['setup']);
    expect(service(compose, 'simulator').profiles).toEqual(['demo']);
  });

  it('gives every service an image or a build context with a Dockerfile', () => {
    for (const [name, entry] of Object.entries(compose.services)) {
      expect(entry.image ?? entry.build, `service ${name}`).toBeDefined();
      if (entry.build === undefined) continue;
      const context = typeof entry.build === 'string' ? entry.build : entry.build.context;
      const dockerfile =
        typeof entry.build === 'string' ? 'Dockerfile' : (entry.build.dockerfile ?? 'Dockerfile');
      expect(statSync(join(REPO, context)).isDirectory(), `service ${name} build context`).toBe(true);
      expect(existsSync(join(REPO, context, dockerfile)), `service ${name} Dockerfile`).toBe(true);
    }
  });

  it('builds one magwatch image for the detector, the trainer and the simulator', () => {
    const built = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(built.map(([name]) => name).sort()).toEqual(['magwatch', 'simulator', 'trainer']);
    expect(new Set(built.map(([, s]) => s.image))).toEqual(new Set(['magwatch:local']));
  });

  it('bind-mounts only paths of the repository, except those created at run time, which git ignores', () => {
    const gitignore = readText(join(REPO, '.gitignore')).split('\n');
    for (const [name, entry] of Object.entries(compose.services)) {
      for (const mount of (entry.volumes ?? []).map(parseMount)) {
        if (!mount.bind) {
          expect(Object.keys(compose.volumes ?? {}), `named volume of ${name}`).toContain(mount.source);
        } else if (CREATED_AT_RUN_TIME.has(mount.source)) {
          // `./models` is ignored at the root only (`/models/`), so that examples/model/models stays tracked.
          expect(gitignore, `${mount.source} is git-ignored`).toContain(`/${mount.source.slice(2)}/`);
        } else {
          expect(existsSync(join(REPO, mount.source)), `${name} mounts ${mount.source}`).toBe(true);
        }
      }
    }
  });

  it('mounts the model bundles read-only into magwatch and writable into the trainer only', () => {
    const models = (name: string) =>
      (service(compose, name).volumes ?? []).map(parseMount).find((m) => m.source === './models');
    expect(models('magwatch')).toMatchObject({ target: '/models', readOnly: true });
    expect(models('trainer')).toMatchObject({ target: '/models', readOnly: false });
  });

  it('publishes ports on the host loopback only', () => {
    for (const [name, entry] of Object.entries(compose.services)) {
      for (const port of (entry.ports ?? []).map(parsePort)) {
        expect(port.hostIp, `service ${name} port ${port.hostPort}`).toBe('127.0.0.1');
      }
    }
  });

  it('leaves no $ for compose to interpolate but braced variable references', () => {
    for (const { path, value } of stringValues(compose)) {
      expect(value.replaceAll('$$', ''), path).not.toMatch(/\$(?!\{)/);
    }
  });
});

describe('the magwatch service', () => {
  it('sets only environment variables that the configuration knows, by their DESIGN names', () => {
    const known = environmentKeys();
    for (const name of Object.keys(environment)) {
      // NAME_FILE holds the value of NAME in a file (Docker secrets).
      expect(known.has(name.replace(/_FILE$/, '')), `${name} is a configuration variable`).toBe(true);
    }
    for (const name of ['MAGWATCH_MQTT_URL', 'MAGWATCH_INFLUX_URL', 'MAGWATCH_MODEL', 'MAGWATCH_HTTP_PORT']) {
      expect(DESIGN_ENV_NAMES).toContain(name);
      expect(environment[name], name).toBeDefined();
    }
  });

  it('points at the broker and InfluxDB services on their ports and database', () => {
    const mqtt = new URL(environment['MAGWATCH_MQTT_URL']!);
    expect(mqtt.protocol).toBe('mqtt:');
    expect(Object.keys(compose.services)).toContain(mqtt.hostname);
    expect(Number(mqtt.port)).toBe(mosquittoListenerPort());

    const influx = new URL(environment['MAGWATCH_INFLUX_URL']!);
    expect(influx.hostname).toBe('influxdb');
    expect(influx.port).toBe('8086');
    expect(influx.pathname).toBe(`/${service(compose, 'influxdb').environment?.['INFLUXDB_DB']}`);
  });

  it('starts after a healthy broker and InfluxDB, and restarts unless stopped', () => {
    expect(magwatch.depends_on).toEqual({
      mosquitto: { condition: 'service_healthy' },
      influxdb: { condition: 'service_healthy' },
    });
    expect(service(compose, 'mosquitto').healthcheck?.test).toBeDefined();
    expect(service(compose, 'influxdb').healthcheck?.test).toBeDefined();
    expect(magwatch.restart).toBe('unless-stopped');
  });

  it('reads a model bundle under the read-only models mount', () => {
    expect(environment['MAGWATCH_MODEL']).toMatch(/^\/models\/[^/]+$/);
  });

  it('publishes the configured HTTP port on 127.0.0.1', () => {
    const config = loadConfig(COMPOSE_CONFIG_PATH, environment);
    const ports = (magwatch.ports ?? []).map(parsePort);
    expect(ports).toEqual([
      { hostIp: '127.0.0.1', hostPort: config.http.port, containerPort: config.http.port },
    ]);
    // Inside the container the server must listen beyond loopback, or the published port reaches nothing.
    expect(config.http.host).toBe('0.0.0.0');
  });

  it('runs with config/compose/magwatch.yaml, which the schema accepts with and without the environment', () => {
    expect(magwatch.command).toEqual(['run', '--config', '/app/config/compose/magwatch.yaml']);
    expect(knownOptions(registerRun)).toContain('--config');
    const withEnvironment = loadConfig(COMPOSE_CONFIG_PATH, environment);
    const fileOnly = loadConfig(COMPOSE_CONFIG_PATH, {});
    for (const config of [withEnvironment, fileOnly]) {
      expect(config.mqtt.url).toBe(environment['MAGWATCH_MQTT_URL']);
      expect(config.influx.url).toBe(environment['MAGWATCH_INFLUX_URL']);
      expect(config.model.path).toBe(environment['MAGWATCH_MODEL']);
      expect(String(config.http.port)).toBe(environment['MAGWATCH_HTTP_PORT']);
    }
  });

  it('keeps secrets out of config/compose/magwatch.yaml', () => {
    const config = loadConfig(COMPOSE_CONFIG_PATH, {});
    expect(config.mqtt.password).toBeUndefined();
    expect(config.influx.password).toBeUndefined();
    expect(config.http.token).toBeUndefined();
  });
});

describe('the trainer and the simulator', () => {
  const trainer = shellCommand('trainer');
  const simulator = shellCommand('simulator');

  it('simulate the same network, so the trained bundle has a model for every simulated channel', () => {
    const network = service(compose, 'trainer').environment?.['SIMULATION_FLAGS'];
    expect(network).toBeDefined();
    expect(service(compose, 'simulator').environment?.['SIMULATION_FLAGS']).toBe(network);
    for (const command of [...invocations(trainer, 'simulate'), ...invocations(simulator, 'simulate')]) {
      expect(command).toContain('$$SIMULATION_FLAGS');
    }
    expect([...flags(network!).keys()].sort()).toEqual(['--observatories', '--rate', '--seed', '--sensors']);
  });

  it('pass only options that the simulate and train commands have', () => {
    const simulate = knownOptions(registerSimulate);
    const train = knownOptions(registerTrain);
    const network = service(compose, 'trainer').environment?.['SIMULATION_FLAGS'] ?? '';
    const simulations = [...invocations(trainer, 'simulate'), ...invocations(simulator, 'simulate')];
    const trainings = invocations(trainer, 'train');
    expect(simulations).toHaveLength(2);
    expect(trainings).toHaveLength(1);
    for (const command of [...simulations, network]) {
      for (const flag of flags(command).keys()) expect(simulate, `simulate ${flag}`).toContain(flag);
    }
    for (const flag of flags(trainings[0]!).keys()) expect(train, `train ${flag}`).toContain(flag);
  });

  it('train quiet data into the bundle that magwatch reads', () => {
    const [simulate] = invocations(trainer, 'simulate');
    const [train] = invocations(trainer, 'train');
    expect(flags(simulate!).get('--anomalies')).toBe('none');
    expect(flags(train!).get('--input')).toBe(flags(simulate!).get('--out'));
    expect(flags(train!).get('--out')).toBe(environment['MAGWATCH_MODEL']);
  });

  it('publish the demo feed to the broker on the topic that magwatch subscribes to', () => {
    const [simulate] = invocations(simulator, 'simulate');
    const broker = new URL(flags(simulate!).get('--broker')!);
    expect(broker.hostname).toBe('mosquitto');
    expect(Number(broker.port)).toBe(mosquittoListenerPort());
    // The simulator publishes on its default topic template; magwatch's pattern must cover it.
    expect(flags(simulate!).has('--topic')).toBe(false);
    const config = loadConfig(COMPOSE_CONFIG_PATH, environment);
    expect(config.mqtt.topic).toBe(DEFAULT_SIMULATE_TOPIC.replace('{sensor}', '+sensor'));
  });

  it('have no health check, as they serve no HTTP', () => {
    expect(service(compose, 'trainer').healthcheck).toEqual({ disable: true });
    expect(service(compose, 'simulator').healthcheck).toEqual({ disable: true });
  });
});
