/**
 * The dashboard on a running live service: what `magwatch run` (with `dashboard.enabled`) and `magwatch demo`
 * hand to the operations HTTP server.
 */
import { basename } from 'node:path';
import type { RouteHandler } from '../ops/http.js';
import type { LiveService } from '../service.js';
import { createDashboard, type DashboardOptions } from './server.js';

/** Page options beyond the service's streams; see `DashboardOptions` for units and defaults. */
export type DashboardWiring = Partial<Pick<DashboardOptions, 'title' | 'historyMs' | 'maxPointsPerSeries'>>;

/**
 * Builds the dashboard over the service's samples and detector and returns its routes. Nothing needs closing:
 * the dashboard ends itself when the service stops, as the detector's and ingest's streams complete.
 * @throws MagwatchError `MW_DASHBOARD_ASSET` when the page or uPlot files are missing from the installation.
 */
export function dashboardRoutes(
  service: Pick<LiveService, 'bundle' | 'detector' | 'samples$'>,
  wiring: DashboardWiring = {},
): Readonly<Record<string, RouteHandler>> {
  const dashboard = createDashboard({
    bundle: service.bundle,
    samples$: service.samples$,
    scores$: service.detector.scores$,
    votes$: service.detector.votes$,
    events$: service.detector.events$,
    title: `magwatch · ${basename(service.bundle.dir)}`,
    ...wiring,
  });
  return dashboard.routes;
}
