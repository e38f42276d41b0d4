import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DASHBOARD_PATH,
  DASHBOARD_PROVIDER_PATH,
  DATASOURCE_PATH,
  type DatasourceRef,
  DESIGN_MEASUREMENTS,
  dashboardQueries,
  dataPanels,
  influxqlNames,
  parseMount,
  REPO,
  readCompose,
  readDashboard,
  readYaml,
  service,
} from './stack.js';

interface DatasourceFile {
  apiVersion: number;
  datasources: Array<{
    name: string;
    uid: string;
    type: string;
    url: string;
    database?: string;
    jsonData?: { version?: string; dbName?: string };
  }>;
}

interface ProviderFile {
  apiVersion: number;
  providers: Array<{ name: string; type: string; options: { path: string } }>;
}

const datasources = readYaml<DatasourceFile>(DATASOURCE_PATH);
const providers = readYaml<ProviderFile>(DASHBOARD_PROVIDER_PATH);
const dashboard = readDashboard();
const compose = readCompose();
const grafanaMounts = (service(compose, 'grafana').volumes ?? []).map(parseMount);
const [influx] = datasources.datasources;

/** Variables that Grafana itself defines: the time filter, the interval, and alias patterns. */
const GRAFANA_VARIABLES = new Set(['timeFilter', '__interval', '__interval_ms']);

/** Every `datasource` reference anywhere in the dashboard JSON, with its path. */
function datasourceRefs(value: unknown, path = ''): Array<{ path: string; ref: DatasourceRef }> {
  if (Array.isArray(value)) return value.flatMap((v, i) => datasourceRefs(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, v]) => {
    const here = path ? `${path}.${key}` : key;
    if (key === 'datasource') return [{ path: here, ref: v as DatasourceRef }];
    return datasourceRefs(v, here);
  });
}

describe('Grafana provisioning', () => {
  it('provisions one InfluxQL data source on the influxdb service and its database', () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toHaveLength(1);
    expect(influx).toMatchObject({ type: 'influxdb', uid: 'magwatch-influx' });
    const url = new URL(influx!.url);
    expect(url.hostname).toBe('influxdb');
    expect(url.port).toBe('8086');
    const database = service(compose, 'influxdb').environment?.['INFLUXDB_DB'];
    expect(influx!.jsonData?.version).toBe('InfluxQL');
    expect(influx!.jsonData?.dbName).toBe(database);
    expect(influx!.database).toBe(database);
  });

  it('mounts provisioning where Grafana reads it and dashboards where the provider looks', () => {
    const provisioning = grafanaMounts.find((m) => m.target === '/etc/grafana/provisioning');
    expect(provisioning?.source).toBe('./config/compose/grafana/provisioning');
    expect(existsSync(join(REPO, provisioning!.source, 'datasources', 'influxdb.yaml'))).toBe(true);

    expect(providers.providers).toHaveLength(1);
    const [provider] = providers.providers;
    expect(provider!.type).toBe('file');
    const dashboards = grafanaMounts.find((m) => m.target === provider!.options.path);
    expect(dashboards?.source).toBe('./config/compose/grafana/dashboards');
    expect(join(REPO, dashboards!.source, 'magwatch.json')).toBe(DASHBOARD_PATH);
  });

  it('opens the magwatch dashboard as the home page', () => {
    const home = service(compose, 'grafana').environment?.['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'];
    expect(home).toBe(`${providers.providers[0]!.options.path}/magwatch.json`);
  });
});

describe('the magwatch dashboard', () => {
  it('has a fixed uid, a title, a current schema version and panels with InfluxQL targets', () => {
    expect(dashboard.uid).toBe('magwatch');
    expect(dashboard.title).toBe('magwatch');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const panels = dataPanels(dashboard);
    expect(panels.length).toBeGreaterThanOrEqual(4);
    for (const panel of panels) {
      expect(panel.targets?.length, `panel "${panel.title}"`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.rawQuery, `panel "${panel.title}"`).toBe(true);
    }
  });

  it('gives panels unique ids', () => {
    const ids = dashboard.panels.flatMap((p) => [p.id, ...(p.panels ?? []).map((c) => c.id)]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('queries the provisioned data source everywhere, by uid', () => {
    const refs = datasourceRefs(dashboard).filter(({ ref }) => ref.type !== 'grafana');
    expect(refs.length).toBeGreaterThan(dataPanels(dashboard).length);
    for (const { path, ref } of refs) expect(ref, path).toEqual({ type: 'influxdb', uid: influx!.uid });
  });

  it('queries only the measurements, fields and tags of DESIGN section 4', () => {
    const used = new Set<string>();
    for (const { where, query } of dashboardQueries(dashboard)) {
      const names = influxqlNames(query);
      expect(names.measurements, where).toHaveLength(1);
      const measurement = names.measurements[0]!;
      const design = DESIGN_MEASUREMENTS[measurement];
      expect(design, `${where}: measurement ${measurement}`).toBeDefined();
      for (const name of names.identifiers) {
        expect([...design!.fields, ...design!.tags], `${where}: ${name} of ${measurement}`).toContain(name);
      }
      expect(names.bareWords, `${where}: unquoted identifiers`).toEqual([]);
      used.add(measurement);
    }
    expect([...used].sort()).toEqual(Object.keys(DESIGN_MEASUREMENTS).sort());
  });

  it('uses only variables it defines or Grafana provides', () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    for (const { where, query } of dashboardQueries(dashboard)) {
      for (const variable of influxqlNames(query).variables) {
        expect(defined.has(variable) || GRAFANA_VARIABLES.has(variable), `${where}: $${variable}`).toBe(true);
      }
    }
    for (const panel of dataPanels(dashboard)) {
      if (panel.repeat !== undefined)
        expect(defined, `panel "${panel.title}" repeat`).toContain(panel.repeat);
    }
  });

  it('filters by group and channel variables read from magwatch_rmse tags', () => {
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables['group']?.query).toBe('SHOW TAG VALUES FROM "magwatch_rmse" WITH KEY = "group"');
    expect(variables['channel']?.query).toMatch(/^SHOW TAG VALUES FROM "magwatch_rmse" WITH KEY = "channel"/);
    for (const variable of Object.values(variables)) {
      expect(variable).toMatchObject({ type: 'query', multi: true, includeAll: true });
    }
  });

  it('plots RMSE against threshold, votes against required, and the anomalous state', () => {
    const selections = dataPanels(dashboard).map((p) => p.targets!.map((t) => influxqlNames(t.query)));
    const selects = (measurement: string, ...fields: string[]) =>
      selections.some((targets) =>
        targets.some(
          (n) => n.measurements[0] === measurement && fields.every((f) => n.identifiers.includes(f)),
        ),
      );
    expect(selects('magwatch_rmse', 'rmse', 'threshold')).toBe(true);
    expect(selects('magwatch_votes', 'votes', 'required')).toBe(true);
    expect(selects('magwatch_rmse', 'anomalous')).toBe(true);
    expect(selects('magwatch_votes', 'anomalous')).toBe(true);
  });

  it('marks events as annotations from magwatch_events, titled by event kind', () => {
    const annotations = dashboard.annotations.list.filter((a) => !a.builtIn);
    expect(annotations).toHaveLength(1);
    const [events] = annotations;
    // Older Grafana versions read the top-level query and columns, newer ones the target.
    for (const form of [events!, events!.target!]) {
      const names = influxqlNames(form.query!);
      expect(names.measurements).toEqual(['magwatch_events']);
      expect(form.titleColumn).toBe('event');
      for (const column of [form.titleColumn, form.textColumn, form.tagsColumn]) {
        expect(names.identifiers).toContain(column);
      }
    }
    expect(events!.target!.query).toBe(events!.query);
  });
});
