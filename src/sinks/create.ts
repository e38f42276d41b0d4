/**
 * The point sink a configuration asks for: InfluxDB when `influx.url` is set, else the line-protocol file.
 */
import type { Logger } from 'pino';
import type { MagwatchConfig } from '../config/schema.js';
import { InfluxWriter } from './influx.js';
import { FileSink } from './line-protocol.js';
import { INTEGER_FIELDS, type PointSink } from './points.js';

/** Creates the sink and logs which one it is (URL without credentials). The caller must `close()` it. */
export function createPointSink(influx: MagwatchConfig['influx'], logger: Logger): PointSink {
  if (influx.url === undefined) {
    logger.info({ file: influx.file }, 'points go to a line-protocol file');
    return new FileSink({ path: influx.file, integerFields: INTEGER_FIELDS, logger });
  }
  const writer = new InfluxWriter({
    url: influx.url,
    username: influx.username,
    password: influx.password,
    batchSize: influx.batchSize,
    flushIntervalMs: influx.flushIntervalMs,
    maxBufferPoints: influx.maxBufferPoints,
    logger,
  });
  logger.info(
    { url: influx.url.replace(/\/\/[^/@]*@/, '//***@'), database: writer.database },
    'points go to influxdb',
  );
  return writer;
}
