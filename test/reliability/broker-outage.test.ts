/**
 * The live service against a real mosquitto that goes away mid-stream: samples published while the service is
 * reconnecting are queued by the broker for its persistent session, and events produced while the broker is away
 * are delivered once it is back.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import {
  connectClient,
  EXAMPLE_CHANNELS,
  exampleMessages,
  publishAll,
  type RunningService,
  startService,
  waitFor,
} from './helpers.js';

/** Mosquitto queues at most 1000 messages per offline session by default; the outage here queues more. */
const BROKER_QUEUE = 'max_queued_messages 100000\n';

describe('live service while the broker goes away', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  async function broker(): Promise<Mosquitto> {
    const started = await startMosquitto({ config: BROKER_QUEUE });
    cleanups.push(() => started.stop());
    return started;
  }

  async function service(url: string, stream: object = {}): Promise<RunningService> {
    const running = await startService({ mqtt: { url, clean: false, qos: 1 }, stream });
    cleanups.push(() => running.stop());
    return running;
  }

  async function client(url: string, options: object = {}): Promise<MqttClient> {
    const connected = await connectClient(url, options);
    cleanups.push(() => connected.endAsync(true));
    return connected;
  }

  it('receives every QoS 1 sample published while it reconnects after a broker restart, and keeps scoring', async () => {
    const mosquitto = await broker();
    const running = await service(mosquitto.url);
    const { ingest, detector } = running.service;
    const messages = await exampleMessages();
    // The storm (samples 192-383 of each sensor) goes before the outage, the OBS1 object (576-703) after.
    const split = messages.findIndex((m) => m.time >= messages[0]!.time + 512_000);
    const before = messages.slice(0, split);
    const after = messages.slice(split);

    const publisher = await client(mosquitto.url, { clientId: 'reliability-publisher', clean: false });
    await publishAll(publisher, before);
    await waitFor(() => ingest.counters().samples === before.length, 'the samples before the outage', {
      detail: () => ingest.counters(),
    });
    await waitFor(() => running.events.some((e) => e.event === 'anomaly.end'), 'the storm event to end', {
      detail: () => running.events.map((e) => e.event),
    });
    const eventsBefore = running.events.length;

    await mosquitto.halt();
    await waitFor(() => !ingest.counters().connected, 'the ingest to notice the outage');
    await mosquitto.resume();
    const outageStarted = Date.now();
    // The publisher's own session reconnects at once; the service backs off, so these wait in its session.
    await waitFor(() => publisher.connected, 'the publisher to reconnect');
    await publishAll(publisher, after);
    const queuedWhileAway = !ingest.counters().connected;

    // QoS 1 is at-least-once: messages whose acknowledgement the broker had not yet processed when it stopped
    // are sent again after the restart. Each must be dropped as a duplicate or late sample, never scored twice.
    const components = 3;
    await waitFor(
      () => detector.stats().accepted === messages.length * components,
      'every sample after the restart to be accepted once',
      { detail: () => ({ ingest: ingest.counters(), detector: detector.stats().dropped }) },
    );
    const recoveredMs = Date.now() - outageStarted;
    expect(
      queuedWhileAway,
      'the samples after the restart were published before the service reconnected',
    ).toBe(true);
    const received = ingest.counters();
    expect(received).toMatchObject({ invalid: {}, reconnects: 1 });
    const redelivered = received.samples - messages.length;
    expect(redelivered).toBeGreaterThanOrEqual(0);

    const windowsPerChannel = Math.floor(messages.length / 3 / 64);
    await waitFor(
      () => detector.stats().windowsScored === windowsPerChannel * EXAMPLE_CHANNELS,
      'every window to be scored',
      { detail: () => detector.stats() },
    );
    const stats = detector.stats();
    expect(stats.dropped).toMatchObject({ queue: 0, inference: 0 });
    expect(stats.dropped.duplicate + stats.dropped.late).toBe(redelivered * components);
    expect(stats.gapResets).toBe(0);
    await waitFor(() => running.events.length > eventsBefore, 'an event from the samples after the restart', {
      detail: () => running.events.map((e) => `${e.event} ${e.start}`),
    });
    const split_time = new Date(after[0]!.time).toISOString();
    expect(running.events.slice(eventsBefore).every((e) => e.start >= split_time)).toBe(true);
    console.info(
      `broker restart: 0 of ${after.length} queued samples lost, ${redelivered} redelivered and dropped, service caught up ${recoveredMs} ms after the broker was back`,
    );
  });

  it('delivers the events it produced while the broker was away to a subscriber with a persistent session', async () => {
    const mosquitto = await broker();
    const subscriber = await client(mosquitto.url, { clientId: 'reliability-subscriber', clean: false });
    await subscriber.subscribeAsync('magwatch/#', { qos: 1 });
    const received = new Map<string, string>();
    subscriber.on('message', (topic, payload) => {
      if (topic.startsWith('magwatch/status/')) return;
      const event = JSON.parse(payload.toString()) as { id: string };
      received.set(event.id, topic);
    });

    // Silence is the signal an outage produces: no sample for 2 s makes every sensor silent.
    const running = await service(mosquitto.url, { silentAfterMs: 2000 });
    const publisher = await client(mosquitto.url);
    const messages = await exampleMessages();
    await publishAll(publisher, messages.slice(0, 300));
    await waitFor(() => running.service.ingest.counters().samples === 300, 'the first samples');

    await mosquitto.halt();
    const downAt = running.events.length;
    await waitFor(
      () => running.events.slice(downAt).filter((e) => e.event === 'sensor.silent').length === 3,
      'a sensor.silent event per sensor while the broker is away',
      { timeoutMs: 20_000, detail: () => running.events.map((e) => e.event) },
    );
    const producedWhileDown = running.events.slice(downAt);
    await mosquitto.resume();
    const resumedAt = Date.now();

    await waitFor(
      () => producedWhileDown.every((e) => received.has(e.id)),
      'the subscriber to receive every event produced while the broker was away',
      {
        timeoutMs: 30_000,
        detail: () => ({ produced: producedWhileDown.map((e) => e.id), got: [...received.keys()] }),
      },
    );
    for (const event of producedWhileDown) {
      expect(received.get(event.id)).toBe(`magwatch/sensors/${event.sensor}`);
    }
    console.info(
      `events while the broker was away: ${producedWhileDown.length} produced, all delivered ${Date.now() - resumedAt} ms after it was back`,
    );
  });
});
