/**
 * Reading the deployment files (docker-compose.yml, Dockerfile, config/compose/**) for the tests of
 * test/deploy. No Docker engine runs where the tests run, so the stack is checked by construction: every
 * path, name and query that the files refer to must exist or agree with the contract of DESIGN section 4.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const COMPOSE_PATH = join(REPO, 'docker-compose.yml');
export const COMPOSE_CONFIG_PATH = join(REPO, 'config', 'compose', 'magwatch.yaml');
export const MOSQUITTO_CONF_PATH = join(REPO, 'config', 'compose', 'mosquitto.conf');
export const GRAFANA_DIR = join(REPO, 'config', 'compose', 'grafana');
export const DASHBOARD_PATH = join(GRAFANA_DIR, 'dashboards', 'magwatch.json');
export const DATASOURCE_PATH = join(GRAFANA_DIR, 'provisioning', 'datasources', 'influxdb.yaml');
export const DASHBOARD_PROVIDER_PATH = join(GRAFANA_DIR, 'provisioning', 'dashboards', 'magwatch.yaml');

/** DESIGN section 4, "Outputs": the InfluxDB measurements with their tags and fields. */
export const DESIGN_MEASUREMENTS: Readonly<Record<string, { tags: string[]; fields: string[] }>> = {
  magwatch_rmse: {
    tags: ['channel', 'sensor', 'component', 'group'],
    fields: ['rmse', 'threshold', 'anomalous'],
  },
  magwatch_votes: { tags: ['group'], fields: ['votes', 'required', 'anomalous'] },
  magwatch_events: { tags: ['group'], fields: ['event', 'votes', 'channels'] },
};

/** DESIGN section 4, "Configuration": the environment names that scripts and the compose file rely on. */
export const DESIGN_ENV_NAMES = [
  'MAGWATCH_MQTT_URL',
  'MAGWATCH_MQTT_TOPIC',
  'MAGWATCH_MQTT_USERNAME',
  'MAGWATCH_MQTT_PASSWORD',
  'MAGWATCH_MQTT_PASSWORD_FILE',
  'MAGWATCH_MODEL',
  'MAGWATCH_INFLUX_URL',
  'MAGWATCH_HTTP_PORT',
];

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

export function readYaml<T = Record<string, unknown>>(path: string): T {
  return parseYaml(readText(path)) as T;
}

export interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  profiles?: string[];
  user?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  restart?: string;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** docker-compose.yml with its YAML anchors resolved, as compose reads it before interpolation. */
export function readCompose(): ComposeFile {
  return readYaml<ComposeFile>(COMPOSE_PATH);
}

export function service(compose: ComposeFile, name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

/** One short-syntax volume entry, `source:target[:mode]`. */
export interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** A path on the host (relative to the compose file) rather than a named volume. */
  readonly bind: boolean;
}

export function parseMount(entry: string): Mount {
  const [source = '', target = '', mode] = entry.split(':');
  return { source, target, readOnly: mode === 'ro', bind: source.startsWith('.') || source.startsWith('/') };
}

/** One short-syntax port entry, `host_ip:host_port:container_port`. */
export interface PublishedPort {
  readonly hostIp: string | undefined;
  readonly hostPort: number;
  readonly containerPort: number;
}

export function parsePort(entry: string): PublishedPort {
  const parts = entry.split(':');
  const containerPort = Number(parts.at(-1));
  const hostPort = Number(parts.at(-2) ?? containerPort);
  return { hostIp: parts.length === 3 ? parts[0] : undefined, hostPort, containerPort };
}

/** Every string value inside a parsed YAML or JSON document, with its path. */
export function stringValues(value: unknown, path = ''): Array<{ path: string; value: string }> {
  if (typeof value === 'string') return [{ path, value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringValues(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => stringValues(v, path ? `${path}.${k}` : k));
  }
  return [];
}

/** The `--name value` pairs of a command line, split on white space (no quoting is used in our commands). */
export function flags(commandLine: string): Map<string, string> {
  const words = commandLine.split(/\s+/).filter((w) => w !== '');
  const found = new Map<string, string>();
  words.forEach((word, i) => {
    if (word.startsWith('--')) {
      const next = words[i + 1];
      found.set(word, next !== undefined && !next.startsWith('--') ? next.replace(/;$/, '') : '');
    }
  });
  return found;
}

// --- Dockerfile ---

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** 0-based index of the stage (FROM) the instruction belongs to. */
  readonly stage: number;
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
export function readDockerfile(path = join(REPO, 'Dockerfile')): Instruction[] {
  const logical = readText(path)
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const instructions: Instruction[] = [];
  let stage = -1;
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile line without arguments: ${line}`);
    const keyword = match[1]!.toUpperCase();
    if (keyword === 'FROM') stage += 1;
    instructions.push({ keyword, args: match[2]!, stage });
  }
  return instructions;
}

/** The exec-form command of the Dockerfile's last HEALTHCHECK (`CMD [...]`). */
export function healthcheckCommand(instructions = readDockerfile()): string[] {
  const healthcheck = instructions.filter((i) => i.keyword === 'HEALTHCHECK').at(-1);
  if (!healthcheck) throw new Error('the Dockerfile has no HEALTHCHECK');
  const json = /\bCMD\s+(\[.*\])\s*$/.exec(healthcheck.args)?.[1];
  if (!json) throw new Error(`HEALTHCHECK is not in exec form: ${healthcheck.args}`);
  return JSON.parse(json) as string[];
}

/** The patterns of .dockerignore. */
export function readDockerignore(): string[] {
  return readText(join(REPO, '.dockerignore'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/**
 * Whether a .dockerignore pattern excludes a path of the build context. Handles what ours uses: plain names
 * anchored at the context root (a directory excludes everything below it) and `*` within one path segment.
 * Negations (`!`) and `**` are not used and not supported.
 */
export function ignoredBy(pattern: string, path: string): boolean {
  const clean = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  const regex = new RegExp(`^${clean.split('*').map(escapeRegex).join('[^/]*')}(/.*)?$`);
  return regex.test(path.replace(/^\.\//, '').replace(/\/+$/, ''));
}

function escapeRegex(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

// --- Grafana dashboard ---

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface DashboardTarget {
  refId: string;
  datasource?: DatasourceRef;
  query: string;
  rawQuery?: boolean;
  alias?: string;
  resultFormat?: string;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  targets?: DashboardTarget[];
  repeat?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  panels?: DashboardPanel[];
}

export interface DashboardAnnotation {
  name: string;
  builtIn?: number;
  datasource: DatasourceRef;
  query?: string;
  titleColumn?: string;
  textColumn?: string;
  tagsColumn?: string;
  target?: { query?: string; titleColumn?: string; textColumn?: string; tagsColumn?: string };
}

export interface DashboardVariable {
  name: string;
  type: string;
  datasource?: DatasourceRef;
  query: string;
  multi?: boolean;
  includeAll?: boolean;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  annotations: { list: DashboardAnnotation[] };
  templating: { list: DashboardVariable[] };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readText(DASHBOARD_PATH)) as Dashboard;
}

/** Panels with their rows' nested panels, rows themselves excluded. */
export function dataPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
}

/** Every InfluxQL query of the dashboard: panel targets, annotations other than Grafana's own, variables. */
export function dashboardQueries(dashboard: Dashboard): Array<{ where: string; query: string }> {
  const queries: Array<{ where: string; query: string }> = [];
  for (const panel of dataPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      queries.push({ where: `panel "${panel.title}" target ${target.refId}`, query: target.query });
    }
  }
  for (const annotation of dashboard.annotations.list) {
    if (annotation.builtIn) continue;
    if (annotation.query !== undefined) {
      queries.push({ where: `annotation "${annotation.name}"`, query: annotation.query });
    }
    if (annotation.target?.query !== undefined) {
      queries.push({ where: `annotation "${annotation.name}" target`, query: annotation.target.query });
    }
  }
  for (const variable of dashboard.templating.list) {
    queries.push({ where: `variable ${variable.name}`, query: variable.query });
  }
  return queries;
}

/** InfluxQL words that are not identifiers of ours: keywords and the functions the dashboard uses. */
const INFLUXQL_WORDS = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'GROUP',
  'BY',
  'TIME',
  'FILL',
  'NULL',
  'AS',
  'SHOW',
  'TAG',
  'VALUES',
  'WITH',
  'KEY',
  'ORDER',
  'ASC',
  'DESC',
  'LIMIT',
  'MAX',
  'MIN',
  'MEAN',
  'LAST',
  'FIRST',
  'COUNT',
  'SUM',
]);

/** What one InfluxQL query names: measurements (after FROM), other identifiers, and unquoted words left over. */
export interface InfluxqlNames {
  readonly measurements: string[];
  /** Double-quoted identifiers other than measurements: fields, tags and aliases. */
  readonly identifiers: string[];
  /** Grafana variables (`$group`, `$__interval`, `${x}`) by name. */
  readonly variables: string[];
  /** Bare words that are neither keywords nor functions: identifiers that escaped quoting. */
  readonly bareWords: string[];
}

/**
 * Splits an InfluxQL query into the names it uses. The dashboard's queries double-quote every identifier, so
 * that this split is complete: any bare word that is not an InfluxQL keyword is reported.
 */
export function influxqlNames(query: string): InfluxqlNames {
  const measurements: string[] = [];
  const identifiers: string[] = [];
  const variables: string[] = [];
  let rest = query.replace(/'(?:[^'\\]|\\.)*'/g, ' ');
  rest = rest.replace(/\/(?:[^/\\]|\\.)*\//g, (regex) => {
    collectVariables(regex, variables);
    return ' ';
  });
  rest = rest.replace(
    /(\bFROM\s+)?"((?:[^"\\]|\\.)*)"/gi,
    (_match, from: string | undefined, name: string) => {
      (from ? measurements : identifiers).push(name);
      return ' ';
    },
  );
  rest = rest.replace(/\$\{?(\w+)\}?/g, (_match, name: string) => {
    variables.push(name);
    return ' ';
  });
  const bareWords = (rest.match(/[A-Za-z_]\w*/g) ?? []).filter((w) => !INFLUXQL_WORDS.has(w.toUpperCase()));
  return { measurements, identifiers, variables, bareWords };
}

function collectVariables(text: string, into: string[]): void {
  for (const match of text.matchAll(/\$\{?(\w+)\}?/g)) into.push(match[1]!);
}

/** The result columns of a query: the SELECT items by alias or name, or `value` for SHOW TAG VALUES. */
export function selectedColumns(query: string): string[] {
  if (/^SHOW TAG VALUES\b/i.test(query)) return ['value'];
  const clause = /^SELECT\s+(.*?)\s+FROM\s/i.exec(query)?.[1];
  if (clause === undefined) throw new Error(`not a SELECT or SHOW TAG VALUES query: ${query}`);
  return clause.split(',').map((item) => {
    const names = [...item.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    if (names.length === 0) throw new Error(`SELECT item without a quoted name: ${item.trim()}`);
    return names.at(-1)!;
  });
}
