import { describe, expect, it } from 'vitest';
import { isMagwatchError } from '../../src/errors.js';
import { compileTopicPattern, fillTopic } from '../../src/ingest/topic.js';

describe('compileTopicPattern', () => {
  it('turns named levels into + and names them in matches', () => {
    const pattern = compileTopicPattern('site/+observatory/+sensor');
    expect(pattern.subscription).toBe('site/+/+');
    expect(pattern.names).toEqual(['observatory', 'sensor']);
    expect(pattern.match('site/OBS1/S1_OBS1_1')).toEqual({ observatory: 'OBS1', sensor: 'S1_OBS1_1' });
  });

  it('reads the impf topic into its four parts', () => {
    const pattern = compileTopicPattern('impf/+iaga/+cadence/+level/+elements');
    expect(pattern.subscription).toBe('impf/+/+/+/+');
    expect(pattern.match('impf/esk/pt1m/1/hdzs')).toEqual({
      iaga: 'esk',
      cadence: 'pt1m',
      level: '1',
      elements: 'hdzs',
    });
  });

  it('rejects topics of another length or with other literal levels', () => {
    const pattern = compileTopicPattern('magwatch/raw/+sensor');
    expect(pattern.match('magwatch/raw')).toBeUndefined();
    expect(pattern.match('magwatch/raw/S1/extra')).toBeUndefined();
    expect(pattern.match('magwatch/cooked/S1')).toBeUndefined();
    expect(pattern.match('magwatch/raw/S1')).toEqual({ sensor: 'S1' });
  });

  it('keeps # and lets it match zero or more levels', () => {
    const pattern = compileTopicPattern('site/+sensor/#');
    expect(pattern.subscription).toBe('site/+/#');
    expect(pattern.match('site/S1')).toEqual({ sensor: 'S1' });
    expect(pattern.match('site/S1/a/b')).toEqual({ sensor: 'S1' });
    expect(pattern.match('other/S1/a')).toBeUndefined();
  });

  it('matches anonymous + levels without naming them', () => {
    const pattern = compileTopicPattern('+/raw/+sensor');
    expect(pattern.subscription).toBe('+/raw/+');
    expect(pattern.match('lab/raw/S2')).toEqual({ sensor: 'S2' });
  });

  it.each([
    ['', 'is empty'],
    ['a/#/b', '# is allowed only as the last level'],
    ['a/+sen-sor', 'not + followed by a name'],
    ['a/+x/+x', 'names the level "x" twice'],
    ['a/b+c', 'mixes a wildcard with text'],
    ['a/#x', 'mixes a wildcard with text'],
  ])('rejects the pattern %j with one line naming it', (pattern, why) => {
    let error: unknown;
    try {
      compileTopicPattern(pattern);
    } catch (caught) {
      error = caught;
    }
    expect(isMagwatchError(error) && error.code).toBe('MW_MQTT_TOPIC_PATTERN');
    expect((error as Error).message).toContain(`"${pattern}"`);
    expect((error as Error).message).toContain(why);
    expect((error as Error).message).not.toContain('\n');
  });
});

describe('fillTopic', () => {
  it('fills {name} and +name levels', () => {
    expect(fillTopic('magwatch/raw/{sensor}', { sensor: 'S1' })).toBe('magwatch/raw/S1');
    expect(fillTopic('magwatch/raw/+sensor', { sensor: 'S1' })).toBe('magwatch/raw/S1');
    expect(fillTopic('impf/{iaga}/{cadence}/x-{level}', { iaga: 'esk', cadence: 'pt1m', level: '1' })).toBe(
      'impf/esk/pt1m/x-1',
    );
  });

  it('fails on an unknown field and on a wildcard left over', () => {
    expect(() => fillTopic('raw/{station}', { sensor: 'S1' })).toThrow(/\{station\}.*sensor/);
    expect(() => fillTopic('raw/+/{sensor}', { sensor: 'S1' })).toThrow(/wildcard/);
  });
});
