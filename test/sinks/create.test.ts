import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createPointSink } from '../../src/sinks/create.js';
import { InfluxWriter } from '../../src/sinks/influx.js';
import { FileSink } from '../../src/sinks/line-protocol.js';
import { votePoint } from '../../src/sinks/points.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: pino({}, { write: (line: string) => lines.push(JSON.parse(line)) }) };
}

describe('createPointSink', () => {
  it('writes to the line-protocol file when influx.url is unset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'magwatch-create-'));
    try {
      const { logger, lines } = capture();
      const influx = configSchema.parse({ influx: { file: join(dir, 'out.lp') } }).influx;
      const sink = createPointSink(influx, logger);
      expect(sink).toBeInstanceOf(FileSink);
      sink.write([votePoint({ group: 'OBS1', start: 1, votes: 1, required: 5, anomalous: false })]);
      await sink.close();
      expect(await readFile(join(dir, 'out.lp'), 'utf8')).toBe(
        'magwatch_votes,group=OBS1 votes=1i,required=5i,anomalous=false 1000000\n',
      );
      expect(lines[0]).toMatchObject({ msg: 'points go to a line-protocol file', file: join(dir, 'out.lp') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes to InfluxDB when influx.url is set, logging the URL without credentials', async () => {
    const { logger, lines } = capture();
    const influx = configSchema.parse({ influx: { url: 'http://w:secret@127.0.0.1:1/site1' } }).influx;
    const sink = createPointSink(influx, logger);
    expect(sink).toBeInstanceOf(InfluxWriter);
    expect((sink as InfluxWriter).database).toBe('site1');
    await sink.close();
    expect(lines[0]).toMatchObject({ msg: 'points go to influxdb', url: 'http://***@127.0.0.1:1/site1' });
    expect(JSON.stringify(lines)).not.toContain('secret');
  });
});
