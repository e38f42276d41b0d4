/**
 * Samples lost upstream (a sensor pausing, a broker dropping its queue) restart the affected channels' windows;
 * the service counts the restarts in /metrics and warns once, so the loss is never silent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startMosquitto } from '../helpers/mosquitto.js';
import {
  connectClient,
  exampleMessages,
  metricValue,
  publishAll,
  type RunningService,
  startService,
  waitFor,
} from './helpers.js';

const GAP_LOG = 'samples missing: channel windows restarted after a gap';

describe('live service when one sensor loses samples', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  it('counts each restarted window in /metrics and logs one warning for the lot', async () => {
    const mosquitto = await startMosquitto();
    cleanups.push(() => mosquitto.stop());
    const running: RunningService = await startService({
      mqtt: { url: mosquitto.url },
      stream: { maxGapMs: 5000 },
    });
    cleanups.push(() => running.stop());
    const publisher = await connectClient(mosquitto.url);
    cleanups.push(() => publisher.endAsync(true));

    const messages = await exampleMessages();
    const first = messages[0]!.time;
    // S2 goes quiet for 30 s, twice: two gaps longer than maxGapMs on each of its three channels.
    const quiet = (time: number) =>
      (time >= first + 200_000 && time < first + 230_000) ||
      (time >= first + 400_000 && time < first + 430_000);
    const sent = messages.filter((m) => !(m.topic.includes('S2_OBS1_2') && quiet(m.time)));
    expect(sent.length).toBeLessThan(messages.length);
    await publishAll(publisher, sent);

    const { detector, http } = running.service;
    await waitFor(() => detector.stats().samples === sent.length, 'every sent message at the detector', {
      detail: () => detector.stats(),
    });
    expect(detector.stats().gapResets).toBe(6);
    await waitFor(
      async () =>
        metricValue(await (await fetch(`${http!.url}/metrics`)).text(), 'magwatch_gap_resets_total') === 6,
      'the gap resets in /metrics',
      { timeoutMs: 5000 },
    );
    const warnings = running.log.lines().filter((l) => String(l['msg']).startsWith(GAP_LOG));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, maxGapMs: 5000 });
    expect(warnings[0]!['windowsRestarted']).toBeGreaterThanOrEqual(3);
  });
});
