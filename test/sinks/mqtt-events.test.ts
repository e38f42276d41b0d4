import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttEventPublisher, topicSegment } from '../../src/sinks/mqtt-events.js';
import type { AnomalyEvent } from '../../src/stream/types.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

describe('topicSegment', () => {
  it.each([
    ['OBS1', 'OBS1'],
    ['a/b', 'a%2Fb'],
    ['a+b', 'a%2Bb'],
    ['a#b', 'a%23b'],
    ['a\0b', 'a%00b'],
    ['a%b', 'a%25b'],
    ['a\nb', 'a%0Ab'],
    ['a\u007fb', 'a%7Fb'],
    ['a\u0085b', 'a%C2%85b'],
    ['$SYS', '%24SYS'],
    ['a$b', 'a$b'],
    ['a b', 'a b'],
    ['Ωmega-ü', 'Ωmega-ü'],
    ['👍', '👍'],
    ['a\ud800b', 'a\ufffdb'],
    ['a\udc00', 'a\ufffd'],
    ['/+#', '%2F%2B%23'],
  ])('encodes %j as %j', (name, expected) => {
    expect(topicSegment(name)).toBe(expected);
  });

  it.each(['a/b', 'x+#y', '100%', 'a\0b', '$x', 'Ωmega/ü'])('lets decodeURIComponent restore %j', (name) => {
    expect(decodeURIComponent(topicSegment(name))).toBe(name);
  });

  it('rejects an empty name', () => {
    expect(() => topicSegment('')).toThrow(expect.objectContaining({ code: 'MW_MQTT_TOPIC_SEGMENT' }));
  });
});

const start: AnomalyEvent = {
  id: 'OBS1-1700000000000',
  event: 'anomaly.start',
  scope: 'group',
  group: 'OBS1',
  start: '2023-11-14T22:13:20.000Z',
  peakVotes: 5,
  requiredVotes: 5,
  channels: [{ channel: 'S1_OBS1_1__b_x', rmse: 3.2, threshold: 1.1 }],
  bundleVersion: '1',
};

interface Received {
  topic: string;
  payload: unknown;
  qos: number;
  retain: boolean;
}

async function subscriber(url: string, topic: string, options: { clientId?: string; clean?: boolean } = {}) {
  const received: Received[] = [];
  const client = await connectAsync(url, { reconnectPeriod: 100, ...options });
  client.on('message', (t, payload, packet: IPublishPacket) => {
    received.push({
      topic: t,
      payload: JSON.parse(payload.toString()),
      qos: packet.qos,
      retain: packet.retain,
    });
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, received };
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('MqttEventPublisher against mosquitto', () => {
  let broker: Mosquitto;
  const clients: MqttClient[] = [];
  const publishers: MqttEventPublisher[] = [];
  const now = () => Date.parse('2023-11-14T22:15:00.000Z');
  const logs: Array<{ msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });

  const publisher = async (topicPrefix?: string) => {
    const created = new MqttEventPublisher({
      url: broker.url,
      topicPrefix,
      logger,
      now,
      reconnectPeriodMs: 100,
    });
    publishers.push(created);
    await created.connected();
    return created;
  };

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterEach(async () => {
    await Promise.all(publishers.splice(0).map((p) => p.close(1000)));
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('publishes an event on the anomalies topic with QoS 1, not retained', async () => {
    const sub = await subscriber(broker.url, 'magwatch/anomalies/#');
    clients.push(sub.client);
    const events = await publisher();
    events.publish(start);
    await waitFor(() => sub.received.length === 1);
    expect(sub.received[0]).toEqual({
      topic: 'magwatch/anomalies/OBS1',
      payload: start,
      qos: 1,
      retain: false,
    });
  });

  it('keeps the group state retained for a late subscriber', async () => {
    const events = await publisher();
    events.publish({ ...start, group: 'OBS2' });
    await waitFor(() => events.stats().published === 2);
    const late = await subscriber(broker.url, 'magwatch/status/OBS2');
    clients.push(late.client);
    await waitFor(() => late.received.length === 1);
    expect(late.received[0]).toEqual({
      topic: 'magwatch/status/OBS2',
      payload: {
        group: 'OBS2',
        state: 'anomalous',
        since: start.start,
        lastEventId: start.id,
        updatedAt: '2023-11-14T22:15:00.000Z',
      },
      qos: 1,
      retain: true,
    });

    events.publish({ ...start, group: 'OBS2', event: 'anomaly.end', end: '2023-11-14T22:14:00.000Z' });
    await waitFor(() => late.received.length === 2);
    expect(late.received[1]?.payload).toMatchObject({ state: 'normal', since: '2023-11-14T22:14:00.000Z' });
  });

  it('resets the retained status of every group to normal', async () => {
    const events = await publisher();
    events.resetStatus(['OBS3', 'global']);
    await waitFor(() => events.stats().published === 2);
    const late = await subscriber(broker.url, 'magwatch/status/+');
    clients.push(late.client);
    await waitFor(() => late.received.filter((r) => /OBS3|global/.test(r.topic)).length === 2);
    const states = late.received.filter((r) => /OBS3|global/.test(r.topic)).map((r) => r.payload);
    expect(states).toContainEqual({
      group: 'OBS3',
      state: 'normal',
      since: '2023-11-14T22:15:00.000Z',
      updatedAt: '2023-11-14T22:15:00.000Z',
    });
  });

  it('sends sensor events to the sensor topic with the id encoded as one level', async () => {
    const sub = await subscriber(broker.url, 'site1/magwatch/#');
    clients.push(sub.client);
    const events = await publisher('site1/magwatch');
    const silent: AnomalyEvent = {
      ...start,
      id: 'silent-1',
      event: 'sensor.silent',
      scope: 'sensor',
      sensor: 'S/1+#',
      channels: [],
    };
    events.publish(silent);
    events.publish({ ...silent, id: 'empty', sensor: '', group: '' });
    await waitFor(() => sub.received.length === 1 && events.stats().failed === 1);
    expect(sub.received[0]).toMatchObject({ topic: 'site1/magwatch/sensors/S%2F1%2B%23', payload: silent });
    expect(sub.received.some((r) => r.topic.includes('/status/'))).toBe(false);
  });

  it('delivers events published while the broker is down once it returns', async () => {
    const sub = await subscriber(broker.url, 'magwatch/anomalies/OBS9', {
      clientId: 'late-reader',
      clean: false,
    });
    clients.push(sub.client);
    const events = await publisher();
    await broker.halt();
    await waitFor(() => logs.some((l) => l.msg === 'mqtt events broker unreachable; queueing'));
    events.publish({ ...start, group: 'OBS9' });
    expect(events.stats().pending).toBe(2);
    await broker.resume();
    await waitFor(() => sub.received.length === 1 && events.stats().pending === 0, 15_000);
    expect(sub.received[0]?.payload).toEqual({ ...start, group: 'OBS9' });
    expect(events.stats()).toEqual({ published: 2, pending: 0, failed: 0 });
  });

  it('names a TLS file it cannot read', () => {
    expect(
      () => new MqttEventPublisher({ url: broker.url, tls: { ca: '/nonexistent/ca.pem' }, logger }),
    ).toThrow(
      expect.objectContaining({ code: 'MW_CONFIG_TLS_FILE', message: expect.stringContaining('mqtt.ca') }),
    );
  });

  it('rejects a prefix with wildcards', () => {
    expect(() => new MqttEventPublisher({ url: broker.url, topicPrefix: 'a/+/b', logger })).toThrow(
      /events.topicPrefix "a\/\+\/b"/,
    );
  });
});
