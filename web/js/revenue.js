// The operator's view (and staff's): revenue per day as a chart (Apache ECharts), a table per lot
// and each lot's occupancy now.  Everything comes from GET /v1/reports/revenue (group=day for the
// chart, group=lot for the table) and GET /v1/lots/{id}/occupancy, for the lots the token may see.
// The chart's data are the API's integers (fen); only the labels are formatted, so what the chart
// holds is exactly what the API said.

import { api, apiText, query, seg } from './api.js';
import { h, fill, table, note, loading, field, select } from './dom.js';
import { money, addMinor, today, addDays, daysBetween, dateRange, hoursMinutes } from './format.js';
import { t } from './i18n.js';

const METRICS = {
  billed: ['billed'],
  collected: ['paid', 'paid_late', 'paid_on_site'],
  owed: ['outstanding', 'overdue', 'defaulted'],
};
const MONEY = ['billed', 'paid', 'paid_late', 'paid_on_site', 'outstanding', 'overdue',
  'defaulted', 'waived', 'refunded'];

// The filter survives a language switch or a return to the view.
const state = { from: null, to: null, lot: '', metric: 'billed' };

let chartLib = null; // a promise of window.echarts, or of null when it cannot be loaded

/** Loads vendor/echarts.min.js once (a classic script: ECharts is a UMD bundle). */
export function loadECharts() {
  if (!chartLib) {
    chartLib = new Promise((resolve) => {
      if (window.echarts) return resolve(window.echarts);
      const s = document.createElement('script');
      s.src = 'vendor/echarts.min.js';
      s.onload = () => resolve(window.echarts || null);
      s.onerror = () => resolve(null);
      document.head.append(s);
    });
  }
  return chartLib;
}

// ECharts writes its tooltip as HTML: what comes from the configuration is escaped first.
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function metricValue(row, metric) {
  return METRICS[metric].reduce((sum, k) => addMinor(sum, row[k] ?? 0), '0');
}

function lotLabel(lots, id) {
  const l = lots.find((x) => x.id === id);
  return l && l.name ? `${l.name} (${id})` : id;
}

function chartOption(report, lots, metric, currency) {
  const dates = dateRange(report.from, report.to);
  const ids = report.lots;
  const series = ids.map((id) => {
    const byDate = new Map();
    for (const r of report.rows) if (r.lot_id === id) byDate.set(r.date, Number(metricValue(r, metric)));
    return {
      name: id, type: 'bar', stack: 'revenue', emphasis: { focus: 'series' },
      data: dates.map((d) => byDate.get(d) ?? 0),
    };
  });
  const fmt = (v) => money(Math.round(v), currency);
  return {
    animation: false,
    color: ['#2f6fde', '#e0892e', '#3aa675', '#9a5bd6', '#d64545', '#4aa3c7', '#8a8a2e'],
    tooltip: {
      trigger: 'axis', axisPointer: { type: 'shadow' }, className: 'chart-tip',
      formatter: (items) => {
        const lines = [escapeHtml(items[0]?.axisValueLabel ?? '')];
        let total = '0';
        for (const it of items) {
          lines.push(`${escapeHtml(lotLabel(lots, it.seriesName))}: ${money(it.value, currency)}`);
          total = addMinor(total, it.value);
        }
        lines.push(`${t('common.total')}: ${money(total, currency)}`);
        return lines.join('<br>');
      },
    },
    legend: { type: 'scroll', top: 0, data: ids, formatter: (id) => lotLabel(lots, id) },
    grid: { left: 90, right: 20, top: 40, bottom: 40 },
    xAxis: { type: 'category', data: dates },
    yAxis: { type: 'value', minInterval: 1, axisLabel: { formatter: fmt } },
    series,
  };
}

function lotTable(report, lots) {
  const cur = report.totals?.currency || 'CNY';
  const stay = (v) => (v === null || v === undefined ? '—' : t('explain.duration_value', hoursMinutes(v)));
  const cols = [
    { key: 'lot_id', label: t('common.lot'), render: (r) => (r === report.totals ? t('common.total') : lotLabel(lots, r.lot_id)) },
    { key: 'district', label: t('common.district'),
      render: (r) => (r === report.totals ? '' : lots.find((l) => l.id === r.lot_id)?.district ?? '') },
    ...['entries', 'exits', 'bills'].map((k) => ({ key: k, label: t('field.' + k), num: true })),
    ...MONEY.map((k) => ({ key: k, label: t('field.' + k), num: true, render: (r) => money(r[k], r.currency || cur) })),
    { key: 'average_stay_s', label: t('field.average_stay_s'), num: true, render: (r) => stay(r.average_stay_s) },
    { key: 'peak_occupancy', label: t('field.peak_occupancy'), num: true },
  ];
  return table(cols, report.rows, {
    id: 'revenue-table', foot: report.totals || null,
    rowData: (r, i) => (i < 0 ? { total: '1' } : { lot: r.lot_id }),
  });
}

function summary(report) {
  const tot = report.totals;
  if (!tot) return null;
  const cur = tot.currency || 'CNY';
  const sum = (keys) => keys.reduce((s, k) => addMinor(s, tot[k] ?? 0), '0');
  const card = (key, value) => h('div.card', { dataset: { summary: key } },
    h('span.label', t('revenue.summary.' + key)), h('span.value', money(value, cur)));
  return h('div.cards', card('billed', tot.billed), card('collected', sum(METRICS.collected)),
    card('owed', sum(METRICS.owed)), card('waived_refunded', sum(['waived', 'refunded'])));
}

async function occupancy(lots, el) {
  const answers = await Promise.all(lots.map((l) =>
    api('GET', `/v1/lots/${seg(l.id)}/occupancy`).then((o) => ({ lot: l, o }), (e) => ({ lot: l, e }))));
  fill(el, answers.map(({ lot, o, e }) => h('div.card.occupancy', { dataset: { lot: lot.id } },
    h('h3', lotLabel(lots, lot.id)),
    e ? note(e.message, 'error') : [
      h('meter', { min: 0, max: o.capacity, value: o.open_sessions, low: o.capacity * 0.7, high: o.capacity * 0.9, optimum: 0 }),
      h('dl.facts',
        h('dt', t('occupancy.capacity')), h('dd', String(o.capacity)),
        h('dt', t('occupancy.open')), h('dd', { dataset: { k: 'open' } }, String(o.open_sessions)),
        h('dt', t('occupancy.free')), h('dd', { dataset: { k: 'free' } }, String(o.free)),
        h('dt', t('occupancy.held')), h('dd', { dataset: { k: 'held' } }, String(o.held))),
    ])));
}

async function downloadCsv(params) {
  const text = await apiText('/v1/reports/revenue' + query({ ...params, format: 'csv' }), 'text/csv');
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = h('a', { href: url, download: `revenue-${params.from}-${params.to}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function revenueView(root, ctx) {
  const lots = ctx.me.lots;
  state.to ??= today();
  state.from ??= addDays(state.to, -29);
  const from = h('input', { type: 'date', name: 'from', value: state.from });
  const to = h('input', { type: 'date', name: 'to', value: state.to });
  const lot = select('lot', [['', t('common.all')], ...lots.map((l) => [l.id, lotLabel(lots, l.id)])], state.lot);
  const metric = select('metric', Object.keys(METRICS).map((k) => [k, t('revenue.metric.' + k)]), state.metric);
  const out = h('div#revenue-out');
  const form = h('form.filters', { id: 'revenue-filters' },
    field(t('common.from'), from), field(t('common.to'), to), field(t('common.lot'), lot),
    field(t('revenue.metric'), metric),
    h('button.primary', { type: 'submit' }, t('common.apply')),
    h('button', { type: 'button', id: 'revenue-csv', onclick: () => downloadCsv(params()).catch((e) => ctx.error(e)) },
      t('common.download_csv')));
  const params = () => ({ from: state.from, to: state.to, lot_id: state.lot || undefined });
  fill(root, h('h2', t('revenue.title')), form, out);
  let chart = null;
  ctx.onLeave(() => chart?.dispose());

  const load = async () => {
    state.from = from.value;
    state.to = to.value;
    state.lot = lot.value;
    state.metric = metric.value;
    const n = state.from && state.to ? daysBetween(state.from, state.to) : NaN;
    delete out.dataset.ready;
    if (!(n >= 1 && n <= 366)) return fill(out, note(t('revenue.bad_range'), 'error'));
    fill(out, loading());
    const [byDay, byLot, echartsLib] = await Promise.all([
      api('GET', '/v1/reports/revenue' + query({ ...params(), group: 'day' })),
      api('GET', '/v1/reports/revenue' + query({ ...params(), group: 'lot' })),
      loadECharts(),
    ]);
    const shown = lots.filter((l) => byLot.lots.includes(l.id));
    const cur = byLot.totals?.currency || shown[0]?.currency || 'CNY';
    const chartBox = h('div.chart', { id: 'revenue-chart', role: 'img', 'aria-label': t('revenue.chart') });
    const occ = h('div.cards#occupancy');
    fill(out,
      summary(byLot),
      h('section', h('h3', t('revenue.chart')),
        echartsLib ? chartBox : note(t('revenue.chart_missing'), 'error chart-missing')),
      h('section', h('h3', t('revenue.table')),
        byLot.rows.length ? lotTable(byLot, lots) : note(t('revenue.no_rows'))),
      h('section', h('h3', t('revenue.occupancy')), occ));
    chart?.dispose();
    chart = null;
    if (echartsLib) {
      chart = echartsLib.init(chartBox, null, { renderer: 'canvas' });
      chart.setOption(chartOption(byDay, lots, state.metric, cur));
      chartBox.dataset.ready = '1';
    }
    await occupancy(shown, occ);
    out.dataset.ready = '1';
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load().catch((err) => ctx.error(err, out));
  });
  metric.addEventListener('change', () => load().catch((err) => ctx.error(err, out)));
  const resize = () => chart?.resize();
  window.addEventListener('resize', resize);
  ctx.onLeave(() => window.removeEventListener('resize', resize));
  await load();
}
