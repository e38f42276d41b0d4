import { MagwatchError } from '../errors.js';

/**
 * An ingest topic pattern with named segments, in the spirit of Telegraf's topic parsing:
 * `site/+observatory/+sensor` subscribes to `site/+/+` and names the two levels of each topic it receives.
 */
export interface TopicPattern {
  /** The pattern as written. */
  readonly pattern: string;
  /** The MQTT subscription filter: named `+name` levels become `+`, `#` stays. */
  readonly subscription: string;
  /** The segment names, in topic order. */
  readonly names: readonly string[];
  /** The named levels of `topic`, or undefined when the topic does not match the pattern. */
  match(topic: string): Record<string, string> | undefined;
}

type Level = { kind: 'literal'; text: string } | { kind: 'single'; name?: string } | { kind: 'rest' };

const SEGMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses and validates a pattern; a bad one is a MagwatchError naming it. */
export function compileTopicPattern(pattern: string): TopicPattern {
  const levels = parseLevels(pattern);
  const names = levels.flatMap((level) => (level.kind === 'single' && level.name ? [level.name] : []));
  const subscription = levels
    .map((level) => (level.kind === 'literal' ? level.text : level.kind === 'single' ? '+' : '#'))
    .join('/');
  return { pattern, subscription, names, match: (topic) => matchLevels(levels, topic) };
}

function parseLevels(pattern: string): Level[] {
  const invalid = (why: string) =>
    new MagwatchError(
      'MW_MQTT_TOPIC_PATTERN',
      `topic pattern "${pattern}": ${why}; expected levels like magwatch/raw/+sensor or site/+observatory/+sensor/#`,
    );
  if (pattern.length === 0) throw invalid('is empty');
  if (pattern.includes('\u0000')) throw invalid('contains a NUL character');

  const parts = pattern.split('/');
  const seen = new Set<string>();
  return parts.map((part, index): Level => {
    if (part === '#') {
      if (index !== parts.length - 1) throw invalid('# is allowed only as the last level');
      return { kind: 'rest' };
    }
    if (part.startsWith('+')) {
      const name = part.slice(1);
      if (name === '') return { kind: 'single' };
      if (!SEGMENT_NAME.test(name))
        throw invalid(`level "${part}" is not + followed by a name of letters, digits and _`);
      if (seen.has(name)) throw invalid(`names the level "${name}" twice`);
      seen.add(name);
      return { kind: 'single', name };
    }
    if (part.includes('+') || part.includes('#')) throw invalid(`level "${part}" mixes a wildcard with text`);
    return { kind: 'literal', text: part };
  });
}

function matchLevels(levels: readonly Level[], topic: string): Record<string, string> | undefined {
  const parts = topic.split('/');
  const fields: Record<string, string> = {};
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    // MQTT's `a/#` also matches `a` itself, so `#` may meet the end of the topic.
    if (level.kind === 'rest') return fields;
    const part = parts[i];
    if (part === undefined) return undefined;
    if (level.kind === 'literal') {
      if (part !== level.text) return undefined;
    } else if (level.name) {
      fields[level.name] = part;
    }
  }
  return parts.length === levels.length ? fields : undefined;
}

/**
 * Fills a publish topic template from `fields`: `{name}` anywhere, or a whole level `+name` as in a pattern,
 * so `magwatch/raw/{sensor}` and `magwatch/raw/+sensor` both give `magwatch/raw/S1`.
 */
export function fillTopic(template: string, fields: Readonly<Record<string, string>>): string {
  const missing = (name: string) =>
    new MagwatchError(
      'MW_MQTT_TOPIC_TEMPLATE',
      `topic "${template}" uses {${name}}, which is not known here; use one of: ${Object.keys(fields).join(', ')}`,
    );
  const topic = template
    .split('/')
    .map((level) => {
      if (level.startsWith('+') && level.length > 1) {
        const value = fields[level.slice(1)];
        if (value === undefined) throw missing(level.slice(1));
        return value;
      }
      return level.replace(/\{([^}]*)\}/g, (_text, name: string) => {
        const value = fields[name];
        if (value === undefined) throw missing(name);
        return value;
      });
    })
    .join('/');
  if (topic.includes('+') || topic.includes('#')) {
    throw new MagwatchError(
      'MW_MQTT_TOPIC_TEMPLATE',
      `topic "${template}" gives "${topic}", which has a wildcard; a publish topic needs {name} fields or plain text`,
    );
  }
  return topic;
}
