// The magwatch live dashboard. Plain browser JavaScript, no build step: uPlot is loaded before this file.
// The event stream starts with a snapshot of the recent history and then sends update batches; the data keeps
// times in epoch ms as the server sends them, and charts take seconds, as uPlot wants.
(() => {
  const uPlot = window.uPlot;
  // The HTTP server takes its token from the address too: an EventSource cannot send a bearer header.
  const token = new URLSearchParams(location.search).get('token');
  const query = token === null ? '' : `?token=${encodeURIComponent(token)}`;

  /** Line colours per component: the last letter of the name picks the axis (b_x, X, H → red-ish, …). */
  const COMPONENT_COLOURS = {
    x: '#d1495b',
    h: '#d1495b',
    y: '#2e933c',
    d: '#2e933c',
    z: '#2c6fbb',
    f: '#7d5ba6',
  };
  const SPARE_COLOURS = ['#c17c00', '#00838f', '#8d6e63', '#5c6bc0'];
  const SHADE = {
    group: 'rgba(200, 30, 30, 0.12)',
    global: 'rgba(109, 40, 217, 0.13)',
    sensor: 'rgba(217, 119, 6, 0.22)',
    silence: 'rgba(100, 116, 139, 0.18)',
  };
  const EDGE = {
    group: 'rgba(200, 30, 30, 0.55)',
    global: 'rgba(109, 40, 217, 0.6)',
    sensor: 'rgba(217, 119, 6, 0.8)',
    silence: 'rgba(100, 116, 139, 0.6)',
  };

  const state = {
    /** The snapshot's layout and settings. */
    layout: null,
    fields: new Map(),
    rmse: new Map(),
    votes: new Map(),
    /** Event records by id, in order of last change. */
    events: new Map(),
    /** Shown time range, seconds. */
    xMin: 0,
    xMax: 1,
  };
  /** Every chart, with the function that builds its data from `state` and the observer of its width. */
  let charts = [];
  let renderQueued = false;

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  const componentColour = (component, index) =>
    COMPONENT_COLOURS[component.slice(-1).toLowerCase()] ?? SPARE_COLOURS[index % SPARE_COLOURS.length];

  const pad = (n) => String(n).padStart(2, '0');
  const clock = (ms) => {
    const d = new Date(ms);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  };
  const dateAndClock = (ms) => `${new Date(ms).toISOString().slice(0, 10)} ${clock(ms)}`;
  const duration = (ms) => {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  };
  const number = (value) =>
    value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toPrecision(3);

  // ---- data ----

  /** Appends update columns to a stored series: only points newer than its last, then trims to the history. */
  function appendColumns(store, key, columns) {
    const times = columns[0];
    if (!times || times.length === 0) return;
    let series = store.get(key);
    if (!series) {
      series = columns.map(() => []);
      store.set(key, series);
    }
    const last = series[0].length ? series[0][series[0].length - 1] : -Infinity;
    for (let i = 0; i < times.length; i++) {
      if (!(times[i] > last)) continue;
      for (let c = 0; c < series.length; c++) series[c].push(columns[c][i] ?? null);
    }
    const oldest = series[0][series[0].length - 1] - state.layout.historyMs;
    let drop = 0;
    while (drop < series[0].length && series[0][drop] < oldest) drop++;
    if (drop > 0) for (const column of series) column.splice(0, drop);
  }

  function applyUpdate(update) {
    for (const [key, columns] of Object.entries(update.fields)) appendColumns(state.fields, key, columns);
    for (const [key, columns] of Object.entries(update.rmse)) appendColumns(state.rmse, key, columns);
    for (const [key, columns] of Object.entries(update.votes)) appendColumns(state.votes, key, columns);
    for (const event of update.events) {
      state.events.delete(event.id);
      state.events.set(event.id, event);
    }
  }

  /** Shown range: the newest data time back by the history, but no earlier than the oldest data. */
  function updateRange() {
    let newest = -Infinity;
    let oldest = Infinity;
    for (const store of [state.fields, state.rmse, state.votes]) {
      for (const series of store.values()) {
        const times = series[0];
        if (times.length === 0) continue;
        newest = Math.max(newest, times[times.length - 1]);
        oldest = Math.min(oldest, times[0]);
      }
    }
    if (!Number.isFinite(newest)) {
      newest = state.layout.now;
      oldest = newest - 60_000;
    }
    oldest = Math.max(oldest, newest - state.layout.historyMs);
    if (newest - oldest < 10_000) oldest = newest - 10_000;
    state.xMin = oldest / 1000;
    state.xMax = newest / 1000;
  }

  const toSeconds = (times) => times.map((t) => t / 1000);

  // ---- event shading ----

  /** A uPlot plugin shading the events that `accepts` selects, under the grid and lines. */
  function shadePlugin(accepts) {
    return {
      hooks: {
        drawClear: (u) => {
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          ctx.beginPath();
          ctx.rect(left, top, width, height);
          ctx.clip();
          let shaded = 0;
          for (const event of state.events.values()) {
            if (!accepts(event)) continue;
            const style =
              event.kind === 'anomaly' ? event.scope : event.kind === 'silence' ? 'silence' : 'sensor';
            const start = u.valToPos(event.start / 1000, 'x', true);
            const endSeconds = event.end !== null ? event.end / 1000 : event.open ? u.scales.x.max : null;
            // A sensor anomaly has no end: a narrow bar marks where its stretch began.
            const end =
              endSeconds === null ? start + 4 * devicePixelRatio : u.valToPos(endSeconds, 'x', true);
            if (end < left || start > left + width) continue;
            ctx.fillStyle = SHADE[style];
            ctx.fillRect(start, top, Math.max(end - start, 2), height);
            ctx.fillStyle = EDGE[style];
            ctx.fillRect(start, top, Math.max(devicePixelRatio, 1.5), height);
            shaded++;
          }
          ctx.restore();
          // Lets a test (or a curious person with the inspector) see what the canvas shows.
          u.root.dataset.shaded = String(shaded);
        },
      },
    };
  }

  const groupShade = (group) => (event) =>
    event.kind === 'anomaly' && (event.group === group || event.group === 'global');
  const sensorShade = (group, sensor) => (event) =>
    groupShade(group)(event) || (event.kind !== 'anomaly' && event.sensor === sensor);

  // ---- charts ----

  function makeChart(container, { height, series, data, accepts, yRange, integerAxis = false }) {
    const width = Math.max(container.clientWidth, 200);
    const options = {
      width,
      height,
      series: [{ label: 'UTC', value: (_, v) => (v === null ? '–' : dateAndClock(v * 1000)) }, ...series],
      scales: {
        x: { time: true, range: () => [state.xMin, state.xMax] },
        y: yRange ? { range: yRange } : {},
      },
      axes: [
        {
          stroke: '#6b7785',
          grid: { stroke: '#eef0f3' },
          ticks: { stroke: '#e1e5ea' },
          // 24-hour UTC clock times; seconds only when the ticks are closer than a minute.
          values: (_u, splits, _axis, _space, increment) =>
            splits.map((v) => (increment < 60 ? clock(v * 1000) : clock(v * 1000).slice(0, 5))),
        },
        {
          stroke: '#6b7785',
          grid: { stroke: '#eef0f3' },
          ticks: { stroke: '#e1e5ea' },
          size: 58,
          ...(integerAxis ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] } : {}),
        },
      ],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      cursor: { sync: { key: 'magwatch' }, drag: { x: false, y: false } },
      legend: { live: true },
      plugins: [shadePlugin(accepts)],
    };
    const chart = new uPlot(options, data(), container);
    const resize = new ResizeObserver(() => {
      const w = Math.max(container.clientWidth, 200);
      if (Math.abs(w - chart.width) > 1) chart.setSize({ width: w, height });
    });
    resize.observe(container);
    charts.push({ chart, data, resize });
    return chart;
  }

  function votesChart(container, group, channelCount) {
    const data = () => {
      const series = state.votes.get(group) ?? [[], [], []];
      return [toSeconds(series[0]), series[1], series[2]];
    };
    return makeChart(container, {
      height: 150,
      data,
      integerAxis: true,
      accepts: groupShade(group),
      yRange: (_u, _min, max) => [0, Math.max(channelCount, max ?? 0) + 0.5],
      series: [
        {
          label: 'votes',
          stroke: '#334155',
          width: 1.5,
          fill: 'rgba(51, 65, 85, 0.08)',
          paths: uPlot.paths.stepped({ align: 1 }),
          value: (_, v) => (v === null ? '–' : String(v)),
        },
        {
          label: 'required',
          stroke: '#c81e1e',
          width: 1.5,
          dash: [6, 4],
          paths: uPlot.paths.stepped({ align: 1 }),
          value: (_, v) => (v === null ? '–' : String(v)),
        },
      ],
    });
  }

  /**
   * Components of one sensor differ by thousands of nT: each line shows its deviation from its mean over the
   * shown history, so that all three share one axis; the legend shows the measured values.
   */
  function fieldChart(container, group, sensor) {
    const means = sensor.components.map(() => 0);
    const data = () => {
      const series = state.fields.get(sensor.sensor) ?? [[], ...sensor.components.map(() => [])];
      const columns = series.slice(1).map((values, i) => {
        let sum = 0;
        let count = 0;
        for (const v of values) {
          if (v === null) continue;
          sum += v;
          count++;
        }
        means[i] = count ? sum / count : 0;
        return values.map((v) => (v === null ? null : v - means[i]));
      });
      return [toSeconds(series[0]), ...columns];
    };
    return makeChart(container, {
      height: 190,
      data,
      accepts: sensorShade(group, sensor.sensor),
      series: sensor.components.map((c, i) => ({
        label: c.component,
        stroke: componentColour(c.component, i),
        width: 1.25,
        spanGaps: false,
        value: (_, v) => (v === null ? '–' : (v + means[i]).toFixed(1)),
      })),
    });
  }

  function rmseChart(container, group, sensor) {
    const data = () => {
      // Components may be scored at different times: join them on one time axis, gaps as nulls.
      const tables = sensor.components.map((c) => {
        const series = state.rmse.get(c.channel) ?? [[], []];
        return [toSeconds(series[0]), series[1]];
      });
      const joined = tables.some((t) => t[0].length > 0) ? uPlot.join(tables) : [[], ...tables.map(() => [])];
      const thresholds = sensor.components.map((c) => joined[0].map(() => c.threshold));
      return [...joined, ...thresholds];
    };
    const lines = sensor.components.map((c, i) => ({
      label: c.component,
      stroke: componentColour(c.component, i),
      width: 1.5,
      spanGaps: true,
      points: { show: true, size: 4 },
      value: (_, v) => number(v),
    }));
    const thresholds = sensor.components.map((c, i) => ({
      label: `${c.component} threshold`,
      // Thresholds are constant and listed in the chips: the legend shows the RMSE lines only.
      class: 'threshold',
      stroke: componentColour(c.component, i),
      width: 1,
      dash: [5, 4],
      alpha: 0.8,
      points: { show: false },
      value: () => number(c.threshold),
    }));
    const top = Math.max(...sensor.components.map((c) => c.threshold).filter(Number.isFinite), 0);
    return makeChart(container, {
      height: 190,
      data,
      accepts: sensorShade(group, sensor.sensor),
      yRange: (_u, _min, max) => [0, Math.max(max ?? 0, top) * 1.08 || 1],
      series: [...lines, ...thresholds],
    });
  }

  // ---- layout ----

  /** Chips, badges and sections that show which channels an open event names, updated on each render. */
  let markers = [];

  function build(layout) {
    for (const { chart, resize } of charts) {
      resize.disconnect();
      chart.destroy();
    }
    charts = [];
    markers = [];
    const root = document.getElementById('groups');
    root.replaceChildren();
    document.title = layout.title;
    document.getElementById('title').textContent = layout.title;

    const channelCount = layout.groups.reduce(
      (n, g) => n + g.sensors.reduce((m, s) => m + s.components.length, 0),
      0,
    );
    const sensorCount = layout.groups.reduce((n, g) => n + g.sensors.length, 0);
    const rule =
      layout.vote.minChannels !== undefined
        ? `${layout.vote.minChannels} channels`
        : `${Math.round(layout.vote.fraction * 100)} % of channels`;
    const fact = (value, label) => el('span', {}, el('b', { text: String(value) }), ` ${label}`);
    document
      .getElementById('facts')
      .replaceChildren(
        fact(channelCount, channelCount === 1 ? 'channel' : 'channels'),
        fact(sensorCount, sensorCount === 1 ? 'sensor' : 'sensors'),
        fact(layout.groups.length, layout.groups.length === 1 ? 'group' : 'groups'),
        el('span', { text: `vote: ${rule}` }),
        el('span', { id: 'data-time' }),
      );

    updateRange();
    // With several groups, the global vote is the network's: it gets its own chart first.
    if (layout.groups.length > 1) {
      const section = el('section', { class: 'panel', 'data-group': 'global' });
      const badge = el('span', { class: 'badge' });
      const votesLabel = el('span', { class: 'sub' });
      section.append(
        el('div', { class: 'panel-head' }, el('h2', { text: 'Network (global vote)' }), badge, votesLabel),
        el('div', { class: 'chart-title', text: 'channels flagged, all groups, against the votes required' }),
      );
      const container = el('div', { class: 'chart votes-chart' });
      section.append(container);
      root.append(section);
      votesChart(container, 'global', channelCount);
      markers.push({ type: 'group', group: 'global', section, badge, votesLabel });
    }

    for (const group of layout.groups) {
      const channels = group.sensors.reduce((n, s) => n + s.components.length, 0);
      const section = el('section', { class: 'panel', 'data-group': group.group });
      const badge = el('span', { class: 'badge' });
      const votesLabel = el('span', { class: 'sub' });
      section.append(
        el(
          'div',
          { class: 'panel-head' },
          el('h2', { text: `Group ${group.group}` }),
          badge,
          el('span', { class: 'sub', text: `${group.sensors.length} sensors · ${channels} channels` }),
          votesLabel,
        ),
        el('div', { class: 'chart-title', text: 'channels flagged against the votes required' }),
      );
      const votesContainer = el('div', { class: 'chart votes-chart' });
      section.append(votesContainer);
      const grid = el('div', { class: 'sensors' });
      section.append(grid);
      root.append(section);
      votesChart(votesContainer, group.group, channels);
      markers.push({ type: 'group', group: group.group, section, badge, votesLabel });

      for (const sensor of group.sensors) {
        const card = el('div', { class: 'sensor', 'data-sensor': sensor.sensor });
        const chips = sensor.components.map((c, i) => {
          const value = el('span', { text: '–' });
          const chip = el(
            'span',
            { class: 'chip', 'data-channel': c.channel, title: `${c.channel}: last RMSE / threshold` },
            el('span', { class: 'swatch', style: `background:${componentColour(c.component, i)}` }),
            c.component,
            value,
          );
          markers.push({ type: 'channel', channel: c.channel, threshold: c.threshold, chip, value, card });
          return chip;
        });
        const badge = el('span', { class: 'badge' });
        card.append(el('div', { class: 'sensor-head' }, el('h3', { text: sensor.sensor }), badge, ...chips));
        markers.push({ type: 'sensor', sensor: sensor.sensor, group: group.group, card, badge });
        const fieldBox = el('div', { class: 'chart' });
        const rmseBox = el('div', { class: 'chart' });
        card.append(
          el(
            'div',
            { class: 'pair' },
            el(
              'div',
              {},
              el('div', { class: 'chart-title', text: 'field, deviation from the shown mean' }),
              fieldBox,
            ),
            el('div', {}, el('div', { class: 'chart-title', text: 'RMSE, dashed: threshold' }), rmseBox),
          ),
        );
        grid.append(card);
        fieldChart(fieldBox, group.group, sensor);
        rmseChart(rmseBox, group.group, sensor);
      }
    }
  }

  // ---- rendering ----

  function renderEvents() {
    const body = document.getElementById('events');
    const events = [...state.events.values()].sort(
      (a, b) => b.start - a.start || (b.open ? 1 : 0) - (a.open ? 1 : 0),
    );
    const active = events.filter((e) => e.open && e.kind === 'anomaly').length;
    document.getElementById('events-sub').textContent =
      events.length === 0 ? 'none yet' : `${events.length} recent · ${active} active`;
    if (events.length === 0) {
      body.replaceChildren(
        el('tr', {}, el('td', { class: 'empty', colspan: '7', text: 'No events in the shown history.' })),
      );
      return;
    }
    body.replaceChildren(
      ...events.slice(0, 50).map((event) => {
        const [label, style] = statusOf(event);
        const row = el('tr', {
          class: event.open ? 'open' : '',
          'data-event-id': event.id,
          'data-state': event.open ? 'open' : 'ended',
          'data-kind': event.kind,
        });
        const end = event.end ?? (event.open ? state.xMax * 1000 : null);
        const chips = event.channels.map((c) => {
          const over = c.rmse !== null && c.rmse > c.threshold;
          const [sensor, component] = c.channel.split('__');
          return el(
            'span',
            { class: `chip${over ? ' over' : ''}`, title: c.channel, 'data-channel': c.channel },
            el('span', { class: 'swatch', style: `background:${componentColour(component ?? '', 0)}` }),
            `${sensor} ${component ?? ''}`,
            el('span', { text: `${number(c.rmse)} / ${number(c.threshold)}` }),
          );
        });
        row.append(
          el('td', {}, el('span', { class: `badge ${style}`, text: label })),
          el('td', { class: 'time', text: dateAndClock(event.start) }),
          el('td', {
            class: 'time',
            text: end === null ? '–' : `${duration(end - event.start)}${event.open ? ' …' : ''}`,
          }),
          el('td', { text: event.group + (event.groups ? ` (${event.groups.join(', ')})` : '') }),
          el('td', { text: event.scope + (event.sensor ? ` · ${event.sensor}` : '') }),
          el('td', {
            class: 'time',
            text: event.peakVotes !== undefined ? `${event.peakVotes} / ${event.requiredVotes}` : '–',
          }),
          el('td', {}, ...(chips.length ? chips : ['–'])),
        );
        return row;
      }),
    );
  }

  function statusOf(event) {
    if (event.kind === 'silence') return event.open ? ['silent', 'silent'] : ['resumed', 'ended'];
    if (event.kind === 'sensor.anomaly') return ['sensor', 'sensor'];
    if (event.open) return ['active', event.scope === 'global' ? 'global' : 'alarm'];
    return ['ended', 'ended'];
  }

  function renderMarkers() {
    const openAnomalies = [...state.events.values()].filter((e) => e.open && e.kind === 'anomaly');
    const flagged = new Set(openAnomalies.flatMap((e) => e.channels.map((c) => c.channel)));
    const silent = new Set(
      [...state.events.values()].filter((e) => e.open && e.kind === 'silence').map((e) => e.sensor),
    );
    const alarmCards = new Set();
    for (const marker of markers) {
      if (marker.type !== 'channel') continue;
      const series = state.rmse.get(marker.channel);
      const last = series?.[1].length ? series[1][series[1].length - 1] : null;
      marker.value.textContent = last === null ? '–' : `${(last / marker.threshold).toFixed(2)}×`;
      const isFlagged = flagged.has(marker.channel);
      marker.chip.classList.toggle('over', isFlagged || (last !== null && last > marker.threshold));
      if (isFlagged) alarmCards.add(marker.card);
    }
    for (const marker of markers) {
      if (marker.type === 'sensor') {
        const alarm = alarmCards.has(marker.card);
        marker.card.classList.toggle('alarm', alarm);
        const [text, style] = silent.has(marker.sensor)
          ? ['silent', 'silent']
          : alarm
            ? ['in event', 'alarm']
            : ['', ''];
        marker.badge.textContent = text;
        marker.badge.className = `badge ${style}`;
        marker.badge.hidden = text === '';
      } else if (marker.type === 'group') {
        const open = openAnomalies.find((e) => e.group === marker.group || e.group === 'global');
        marker.section.classList.toggle('section-alarm', Boolean(open));
        marker.badge.textContent = open ? `anomaly · ${open.scope}` : 'normal';
        marker.badge.className = `badge ${open ? (open.scope === 'global' ? 'global' : 'alarm') : ''}`;
        const votes = state.votes.get(marker.group);
        const n = votes ? votes[0].length : 0;
        marker.votesLabel.textContent = n
          ? `last vote ${votes[1][n - 1]} of ${votes[2][n - 1]} required`
          : '';
      }
    }
  }

  function render() {
    renderQueued = false;
    if (!state.layout) return;
    updateRange();
    // Ended events that scrolled out of the shown history go, so that a page left open stays small.
    for (const [id, event] of state.events) {
      if (!event.open && (event.end ?? event.start) < state.xMin * 1000) state.events.delete(id);
    }
    for (const { chart, data } of charts) {
      chart.batch(() => {
        chart.setData(data(), false);
        chart.setScale('x', { min: state.xMin, max: state.xMax });
      });
    }
    renderEvents();
    renderMarkers();
    const time = document.getElementById('data-time');
    if (time) time.textContent = `data up to ${dateAndClock(state.xMax * 1000)} UTC`;
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  // ---- connection ----

  function setConnection(name, text) {
    const node = document.getElementById('connection');
    node.dataset.state = name;
    document.getElementById('connection-text').textContent = text;
  }

  function connect() {
    const source = new EventSource(`events${query}`);
    source.addEventListener('snapshot', (message) => {
      const snapshot = JSON.parse(message.data);
      state.layout = snapshot;
      state.fields = new Map();
      state.rmse = new Map();
      state.votes = new Map();
      state.events = new Map();
      applyUpdate(snapshot);
      build(snapshot);
      setConnection('live', 'live');
      scheduleRender();
    });
    source.addEventListener('update', (message) => {
      if (!state.layout) return;
      applyUpdate(JSON.parse(message.data));
      scheduleRender();
    });
    source.onopen = () => setConnection('live', 'live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setConnection('closed', 'disconnected');
      else setConnection('connecting', 'reconnecting…');
    };
  }

  connect();
})();
