// The dashboard: a few PromQL queries to the embedded default's Prometheus (through the gateway,
// under /prometheus), each drawn as an SVG line chart. No charting library: a chart is a few
// polylines.

import { el, svg } from './dom.js';

const WINDOW_SECONDS = 15 * 60;
const STEP_SECONDS = 5;
const REFRESH_MS = 5000;

/** Each chart: its title, what it shows, and its series (a legend name, or a label to name them by). */
export const CHARTS = [
  {
    id: 'orders',
    title: 'Orders a minute',
    about: 'checkouts decided, by outcome',
    series: [{ query: 'sum by (outcome) (increase(bookstore_orders_total[1m]))', by: 'outcome' }],
  },
  {
    id: 'checkout-latency',
    title: 'Checkout latency (s)',
    about: 'from the request to the decision',
    series: [
      { query: 'histogram_quantile(0.5, sum by (le) (rate(bookstore_checkout_seconds_bucket[1m])))', name: 'median' },
      { query: 'histogram_quantile(0.95, sum by (le) (rate(bookstore_checkout_seconds_bucket[1m])))', name: '95th percentile' },
    ],
  },
  {
    id: 'execution',
    title: 'Queued and committing (s, 95th percentile)',
    about: 'time in the queue, and the two-phase commit',
    series: [
      { query: 'histogram_quantile(0.95, sum by (le) (rate(bookstore_order_queued_seconds_bucket[1m])))', name: 'queued' },
      { query: 'histogram_quantile(0.95, sum by (le) (rate(bookstore_two_phase_commit_seconds_bucket[1m])))', name: 'two-phase commit' },
    ],
  },
  {
    id: 'executions',
    title: 'Executions a minute',
    about: 'deliveries to the executor, by outcome',
    series: [{ query: 'sum by (outcome) (increase(bookstore_executions_total[1m]))', by: 'outcome' }],
  },
  {
    id: 'in-flight',
    title: 'In flight',
    about: 'checkouts and executions running',
    series: [
      { query: 'sum(bookstore_checkouts_in_flight)', name: 'checkouts' },
      { query: 'sum(bookstore_executions_in_flight)', name: 'executions' },
    ],
  },
  {
    id: 'queues',
    title: 'Queue depth',
    about: 'messages, as the last status read saw them',
    series: [{ query: 'max by (queue, state) (bookstore_queue_messages)', by: ['queue', 'state'] }],
  },
  {
    id: 'raft-term',
    title: 'Raft term',
    about: 'each node\'s; a step is an election',
    series: [{ query: 'max by (node_id) (raft_term)', by: 'node_id', prefix: 'node ' }],
  },
  {
    id: 'raft-lag',
    title: 'Raft commit lag',
    about: 'entries a node holds that are not yet known committed',
    series: [{ query: 'max by (node_id) (raft_commit_lag)', by: 'node_id', prefix: 'node ' }],
  },
  {
    id: 'fraud',
    title: 'Fraud rejections a minute',
    about: 'orders fraud detection refused',
    series: [{ query: 'sum(increase(bookstore_fraud_rejections_total[1m]))', name: 'rejected' }],
  },
];

/** The name of one result of `spec`'s query, from its labels. */
export function seriesName(spec, metric) {
  if (spec.name) return spec.name;
  const labels = Array.isArray(spec.by) ? spec.by : [spec.by];
  return (spec.prefix ?? '') + labels.map((label) => metric[label] ?? '?').join(' ');
}

/** Prometheus's matrix results as `[{name, points: [[t, v]]}]`, NaN points left out. */
export function toSeries(spec, result) {
  return result.map((r) => ({
    name: seriesName(spec, r.metric),
    points: r.values.map(([t, v]) => [Number(t), Number(v)]).filter(([, v]) => Number.isFinite(v)),
  }));
}

/** A value for people: at most three significant digits. */
export function formatValue(v) {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  return Math.abs(v) >= 100 ? Math.round(v).toString() : Number(v.toPrecision(3)).toString();
}

const WIDTH = 320;
const HEIGHT = 120;
const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989'];

/** The SVG of `series` between `start` and `end` (seconds), or from its first point if later. */
export function drawChart(title, series, windowStart, end) {
  const first = Math.min(...series.flatMap((s) => s.points.map(([t]) => t)));
  const start = Number.isFinite(first) ? Math.max(windowStart, Math.min(first, end - 60)) : windowStart;
  const max = Math.max(1e-9, ...series.flatMap((s) => s.points.map(([, v]) => v)));
  const x = (t) => ((t - start) / Math.max(1, end - start)) * WIDTH;
  const y = (v) => HEIGHT - (v / max) * (HEIGHT - 8);
  const lines = series.map((s, i) => svg('polyline', {
    points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
    fill: 'none',
    stroke: COLORS[i % COLORS.length],
    'stroke-width': '2',
    'data-series': s.name,
  }));
  const latest = series.map((s) => `${s.name} ${formatValue(s.points.at(-1)?.[1])}`).join(', ');
  return svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': `${title}: ${latest || 'no data yet'}`,
    class: 'chart',
  }, svg('line', { x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT, stroke: '#c9cfdb' }), ...lines);
}

async function queryRange(query, start, end) {
  const params = new URLSearchParams({ query, start, end, step: STEP_SECONDS });
  const response = await fetch(`prometheus/api/v1/query_range?${params}`, { signal: AbortSignal.timeout(10000) });
  const body = await response.json().catch(() => null);
  if (!response.ok || body?.status !== 'success') {
    throw new Error(body?.error?.message ?? body?.error ?? `Prometheus answered ${response.status}`);
  }
  return body.data.result;
}

function chartCard(chart) {
  return el('section', { class: 'card chart-card', id: `chart-${chart.id}`, 'aria-labelledby': `chart-${chart.id}-title` },
    el('h2', { id: `chart-${chart.id}-title` }, chart.title),
    el('p', { class: 'muted' }, chart.about),
    el('div', { class: 'chart-box' }),
    el('ul', { class: 'legend' }));
}

async function refresh(cards) {
  const end = Math.floor(Date.now() / 1000);
  const start = end - WINDOW_SECONDS;
  const message = document.getElementById('message');
  try {
    for (const chart of CHARTS) {
      const results = await Promise.all(chart.series.map((spec) => queryRange(spec.query, start, end).then((r) => toSeries(spec, r))));
      const series = results.flat().filter((s) => s.points.length > 0);
      const card = cards.get(chart.id);
      card.querySelector('.chart-box').replaceChildren(drawChart(chart.title, series, start, end));
      card.querySelector('.legend').replaceChildren(...(series.length === 0
        ? [el('li', { class: 'muted' }, 'no data yet')]
        : series.map((s, i) => el('li', { style: `--swatch: ${COLORS[i % COLORS.length]}` },
          el('span', { class: 'swatch' }), `${s.name}: `, el('strong', {}, formatValue(s.points.at(-1)[1]))))));
    }
    message.hidden = true;
  } catch (e) {
    message.textContent = `The dashboard cannot read the metrics: ${e.message}`;
    message.hidden = false;
  }
}

function start() {
  const main = document.getElementById('charts');
  const cards = new Map(CHARTS.map((chart) => [chart.id, chartCard(chart)]));
  main.replaceChildren(...cards.values());
  const tick = () => refresh(cards).finally(() => setTimeout(tick, REFRESH_MS));
  tick();
}

if (document.getElementById('charts')) start();
