/**
 * Loads the configuration of `magwatch run`: a YAML file, then environment overrides, validated at once.
 *
 * Environment: every key `<section>.<key>` has a variable `MAGWATCH_<SECTION>_<KEY>` in upper snake case
 * (`stream.maxBatch` → `MAGWATCH_STREAM_MAX_BATCH`), plus the DESIGN alias `MAGWATCH_MODEL` for `model.path`,
 * which wins over `MAGWATCH_MODEL_PATH`. Numbers and booleans (`true/false/1/0/yes/no/on/off`) are coerced
 * from the text; list keys take JSON. Any variable may instead be given as `<NAME>_FILE`, a file whose content
 * (less one trailing newline) is the value, as Docker and Kubernetes mount secrets.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { MagwatchError } from '../errors.js';
import { configSchema, type MagwatchConfig, SECRET_KEYS } from './schema.js';

export const ENV_PREFIX = 'MAGWATCH_';
/** DESIGN section 4's names that do not follow the generic rule. */
const ENV_ALIASES: Readonly<Record<string, string>> = { MAGWATCH_MODEL: 'model.path' };
/** Variables of the command line, not of the configuration; not reported as unknown. */
const ENV_OTHERS = new Set(['MAGWATCH_CONFIG']);

export interface LoadConfigOptions {
  /** Receives non-fatal findings: unknown `MAGWATCH_*` variables, an HTTP server open without a token. */
  warn?: (message: string) => void;
}

/**
 * Reads `path` (default `config/default.yaml` of the installed package), applies the environment and validates.
 * The result is deep-frozen.
 * @throws MagwatchError `MW_CONFIG_MISSING`, `MW_CONFIG_YAML`, or `MW_CONFIG_INVALID` naming every bad key.
 */
export function loadConfig(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadConfigOptions = {},
): MagwatchConfig {
  const file = path ?? DEFAULT_CONFIG_PATH;
  const document = readDocument(file);
  const problems: string[] = [];
  const sources = applyEnvironment(document, env, problems, options.warn);

  const result = configSchema.safeParse(document);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...describeIssue(issue, sources));
  }
  if (problems.length > 0) {
    const where = path === undefined ? `${file} and the environment` : file;
    const message =
      problems.length === 1
        ? `configuration ${where} is invalid: ${problems[0]}`
        : `configuration ${where} has ${problems.length} problems:\n  ${problems.join('\n  ')}`;
    throw new MagwatchError('MW_CONFIG_INVALID', message);
  }

  const config = result.data!;
  if (config.http.enabled && !config.http.token && !isLoopback(config.http.host)) {
    options.warn?.(
      `http.host is ${config.http.host} and http.token is unset: /metrics and /readyz are open to the network; set MAGWATCH_HTTP_TOKEN`,
    );
  }
  return deepFreeze(config);
}

/** The package's `config/default.yaml`, found from this file rather than the working directory. */
export const DEFAULT_CONFIG_PATH = join(packageRoot(), 'config', 'default.yaml');

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'magwatch') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no magwatch package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function readDocument(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MagwatchError(
      'MW_CONFIG_MISSING',
      `configuration file ${resolve(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? error}); pass an existing file with --config`,
      { cause: error },
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? `:${error.linePos[0].line}` : '';
    const what = (error as Error).message.split('\n')[0];
    throw new MagwatchError(
      'MW_CONFIG_YAML',
      `configuration file ${file}${where} is not valid YAML: ${what}`,
      {
        cause: error,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new MagwatchError(
      'MW_CONFIG_YAML',
      `configuration file ${file} must be a YAML mapping of sections (mqtt:, model:, …), not a ${Array.isArray(parsed) ? 'list' : typeof parsed}`,
    );
  }
  return parsed as Record<string, unknown>;
}

type LeafKind = 'number' | 'boolean' | 'json' | 'string';

interface EnvKey {
  readonly path: string;
  readonly kind: LeafKind;
}

/** Every environment variable name to the key it sets, derived from the schema. */
export function environmentKeys(): ReadonlyMap<string, EnvKey> {
  const keys = new Map<string, EnvKey>();
  for (const [section, sectionSchema] of Object.entries(configSchema.shape)) {
    const shape = (unwrap(sectionSchema) as unknown as { shape: Record<string, z.ZodType> }).shape;
    for (const [key, leaf] of Object.entries(shape)) {
      const name = `${ENV_PREFIX}${upperSnake(section)}_${upperSnake(key)}`;
      keys.set(name, { path: `${section}.${key}`, kind: leafKind(leaf) });
    }
  }
  for (const [alias, path] of Object.entries(ENV_ALIASES)) {
    const target = [...keys.values()].find((k) => k.path === path)!;
    keys.set(alias, target);
  }
  return keys;
}

function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Peels defaults, optionals and transforms off a schema to reach the type a value must have. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema as unknown as { def: { type: string; innerType?: unknown; in?: unknown } };
  for (;;) {
    const { def } = current;
    if (def.innerType !== undefined) current = def.innerType as typeof current;
    else if (def.type === 'pipe') current = def.in as typeof current;
    else return current as unknown as z.ZodType;
  }
}

function leafKind(schema: z.ZodType): LeafKind {
  const def = (unwrap(schema) as unknown as { def: { type: string; values?: unknown[] } }).def;
  if (def.type === 'number') return 'number';
  if (def.type === 'boolean') return 'boolean';
  if (def.type === 'array' || def.type === 'object' || def.type === 'record') return 'json';
  if (def.type === 'literal' && def.values?.every((v) => typeof v === 'number')) return 'number';
  return 'string';
}

/** Sets the document's keys from the environment; returns which variable set which key path. */
function applyEnvironment(
  document: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warn: LoadConfigOptions['warn'],
): Map<string, string> {
  const keys = environmentKeys();
  const sources = new Map<string, string>();
  // Aliases last, so the DESIGN name wins over the generic one.
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX))
    .sort((a, b) => Number(a in ENV_ALIASES) - Number(b in ENV_ALIASES) || a.localeCompare(b));

  for (const name of names) {
    const raw = env[name]!;
    let key = keys.get(name);
    let text = raw;
    let variable = name;
    if (!key && name.endsWith('_FILE') && keys.has(name.slice(0, -5))) {
      variable = name.slice(0, -5);
      key = keys.get(variable)!;
      if (env[variable] !== undefined) {
        problems.push(`${key.path}: both ${variable} and ${name} are set; keep one`);
        continue;
      }
      try {
        text = readFileSync(raw, 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        problems.push(
          `${key.path}: ${name} names ${raw}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`,
        );
        continue;
      }
    }
    if (!key) {
      if (!ENV_OTHERS.has(name))
        warn?.(`environment variable ${name} is not a magwatch setting; it is ignored`);
      continue;
    }
    const value = coerce(text, key.kind);
    if (value === undefined) {
      problems.push(`${key.path}: ${name} is not valid JSON; expected e.g. [{"topic": "impf/+iaga/#"}]`);
      continue;
    }
    setPath(document, key.path, value, problems);
    // The value helps fix a typo, except a secret's or one read from a file.
    const shown = SECRET_KEYS.has(key.path) || name !== variable ? name : `${name}=${JSON.stringify(text)}`;
    sources.set(key.path, shown);
  }
  return sources;
}

function coerce(text: string, kind: LeafKind): unknown {
  const trimmed = text.trim();
  if (kind === 'number') {
    const digits = trimmed.replace(/_/g, '');
    return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(digits) ? Number(digits) : text;
  }
  if (kind === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(trimmed)) return true;
    if (/^(false|0|no|off)$/i.test(trimmed)) return false;
    return text;
  }
  if (kind === 'json') {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  return text;
}

function setPath(document: Record<string, unknown>, path: string, value: unknown, problems: string[]): void {
  const [section, key] = path.split('.') as [string, string];
  const current = document[section];
  if (current === undefined || current === null) document[section] = { [key]: value };
  else if (typeof current === 'object' && !Array.isArray(current))
    (current as Record<string, unknown>)[key] = value;
  else problems.push(`${section}: expected a mapping of keys, got ${JSON.stringify(current)}`);
}

function describeIssue(issue: z.core.$ZodIssue, sources: ReadonlyMap<string, string>): string[] {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path.map(String));
    return issue.keys.map(
      (key) =>
        `${path ? `${path}.` : ''}${key}: unknown key${known ? `; known keys: ${known.join(', ')}` : ''}`,
    );
  }
  const topPath = issue.path.slice(0, 2).map(String).join('.');
  const source = sources.get(topPath);
  const from = source ? ` (set by ${source})` : '';
  return [`${path || '(top level)'}: ${issue.message}${from}`];
}

function knownKeys(path: string[]): string[] | undefined {
  if (path.length === 0) return Object.keys(configSchema.shape);
  if (path.length === 1) {
    const section = configSchema.shape[path[0] as keyof typeof configSchema.shape];
    if (section) return Object.keys((unwrap(section) as unknown as { shape: object }).shape);
  }
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

const REDACTED = '***';

/**
 * A copy of the configuration that is safe to log: secrets (`mqtt.password`, `influx.password`, `http.token`)
 * and the userinfo of any URL become `***`.
 */
export function redactConfig(config: MagwatchConfig): unknown {
  const redact = (value: unknown, path: string): unknown => {
    if (SECRET_KEYS.has(path)) return value === undefined ? undefined : REDACTED;
    if (typeof value === 'string') return redactUrl(value);
    if (Array.isArray(value)) return value.map((v, i) => redact(v, `${path}.${i}`));
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, redact(v, path ? `${path}.${k}` : k)]),
      );
    }
    return value;
  };
  return redact(config, '');
}

/** `scheme://user:pass@host…` → `scheme://***@host…`; other strings unchanged. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, `$1${REDACTED}@`);
}
