// City staff's view: the defaults list with its filters (GET /v1/defaults), a plate's detail
// (GET /v1/defaults/{plate}: the driver, its credit history, its bills with their fee explanation,
// reminders and history) and the actions on them, each with a required reason: waive, dispute,
// resolve, refund (POST /v1/bills/{bill}/…) and reinstate (POST /v1/defaults/{plate}/reinstate).

import { api, query, seg } from './api.js';
import { h, fill, table, badge, note, loading, field, select, reasonDialog, toast } from './dom.js';
import { money, localTime, unixTime, parseMoney } from './format.js';
import { t, tOr } from './i18n.js';
import { explanation, reasonCodes } from './explain.js';

const STATUSES = ['overdue', 'defaulted', 'disputed', 'owed'];
const OWED = ['pending', 'retry_scheduled', 'failed', 'alert', 'overdue', 'defaulted'];
const REFUNDABLE = ['paid', 'paid_late', 'refunded']; // refunded: in part, maybe

const filters = { status: [], district: '', lot: '', min_amount: '', min_age_days: '', limit: '50' };

export function statusBadge(status, disputed) {
  return [badge(tOr('status.' + status, status), 'st-' + status),
    disputed ? [' ', badge(t('common.disputed'), 'disputed')] : null];
}

function plateLink(plate) {
  return h('a', { href: '#/defaults/' + encodeURIComponent(plate) }, plate);
}

export async function defaultsView(root, ctx) {
  const lots = ctx.me.lots;
  const districts = [...new Set(lots.map((l) => l.district).filter(Boolean))];
  const boxes = STATUSES.map((s) => h('label.check', h('input', { type: 'checkbox', name: 'status', value: s,
    checked: filters.status.includes(s) }), ' ', t('status.' + s)));
  const district = select('district', [['', t('common.all')], ...districts.map((d) => [d, d])], filters.district);
  const lot = select('lot', [['', t('common.all')], ...lots.map((l) => [l.id, `${l.name || l.id} (${l.id})`])], filters.lot);
  const minAmount = h('input', { name: 'min_amount', inputmode: 'decimal', value: filters.min_amount, size: 8 });
  const minAge = h('input', { type: 'number', name: 'min_age_days', min: 0, value: filters.min_age_days, size: 5 });
  const limit = select('limit', ['20', '50', '100', '500'].map((v) => [v, v]), filters.limit);
  const form = h('form.filters#defaults-filters',
    h('fieldset.statuses', h('legend', t('defaults.status')), boxes),
    field(t('common.district'), district), field(t('common.lot'), lot),
    field(t('defaults.min_amount'), minAmount), field(t('defaults.min_age'), minAge),
    field(t('defaults.limit'), limit),
    h('button.primary', { type: 'submit' }, t('common.apply')),
    h('button', { type: 'reset' }, t('common.reset')));
  const out = h('div#defaults-out');
  fill(root, h('h2', t('defaults.title')), form, out);

  let cursor = null;
  let rows = [];
  const columns = [
    { key: 'exit', label: t('common.exit'), render: (r) => localTime(r.exit) },
    { key: 'lot', label: t('common.lot') },
    { key: 'district', label: t('common.district') },
    { key: 'plate', label: t('common.plate'), render: (r) => plateLink(r.plate) },
    { key: 'bill', label: t('common.bill') },
    { key: 'amount', label: t('common.amount'), num: true, render: (r) => money(r.amount, r.currency) },
    { key: 'status', label: t('common.status'), render: (r) => statusBadge(r.status, r.disputed) },
    { key: 'age_days', label: t('defaults.age_days'), num: true },
    { key: 'since', label: t('defaults.since'), render: (r) => localTime(r.since) },
  ];
  const params = () => {
    const minor = filters.min_amount ? parseMoney(filters.min_amount) : '';
    return {
      status: filters.status.join(','), district: filters.district, lot: filters.lot,
      min_amount: minor, min_age_days: filters.min_age_days, limit: filters.limit,
    };
  };
  const render = () => {
    fill(out,
      h('p.count', t('defaults.count', { count: rows.length })),
      rows.length ? table(columns, rows, { id: 'defaults-table', rowData: (r) => ({ bill: r.bill }) })
        : note(t('common.empty')),
      cursor ? h('button#defaults-more', { type: 'button', onclick: () => page(false).catch((e) => ctx.error(e, out)) },
        t('common.more')) : null);
    out.dataset.ready = '1';
  };
  const page = async (first) => {
    const p = params();
    if (p.min_amount === null) return fill(out, note(t('defaults.bad_amount'), 'error'));
    if (first) {
      delete out.dataset.ready;
      fill(out, loading());
    }
    const ans = await api('GET', '/v1/defaults' + query({ ...p, cursor: first ? undefined : cursor }));
    rows = first ? ans.items : rows.concat(ans.items);
    cursor = ans.next_cursor;
    render();
  };
  const read = () => {
    filters.status = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    filters.district = district.value;
    filters.lot = lot.value;
    filters.min_amount = minAmount.value.trim();
    filters.min_age_days = minAge.value.trim();
    filters.limit = limit.value;
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    read();
    page(true).catch((err) => ctx.error(err, out));
  });
  form.addEventListener('reset', () => setTimeout(() => {
    read();
    page(true).catch((err) => ctx.error(err, out));
  }));
  await page(true);
}

/* ---- a plate's detail ------------------------------------------------------------------------ */

function billId(b) {
  return b.bill || (b.id ? b.id + '~b' : '');
}

function historyTable(items) {
  return table([
    { key: 'at', label: t('common.time'), render: (r) => unixTime(r.at) },
    { key: 'from', label: t('common.status'), render: (r) => [r.from ? tOr('status.' + r.from, r.from) + ' → ' : '',
      r.to ? tOr('status.' + r.to, r.to) : ''] },
    { key: 'cause', label: t('detail.cause'), render: (r) => tOr('cause.' + r.cause, r.cause ?? '') },
  ], items || []);
}

function remindersTable(items) {
  if (!items || !items.length) return h('p.note', t('common.none'));
  return table([
    { key: 'at', label: t('common.time'), render: (r) => localTime(r.at) },
    { key: 'kind', label: t('detail.reminders'), render: (r) => tOr('reminder.kind.' + r.kind, r.kind) },
    { key: 'state', label: t('common.status'), render: (r) => tOr('reminder.' + r.state, r.state) },
  ], items);
}

async function act(ctx, { action, target, path, fields = [], body = (v) => ({ reason: v.reason }) }) {
  const done = await reasonDialog({
    title: t('action.confirm_title', { action: t('action.' + action), target }),
    fields,
    submitLabel: t('action.' + action),
    onSubmit: async (values) => {
      const b = body(values);
      if (b === null) throw new Error(t('defaults.bad_amount'));
      return api('POST', path, b);
    },
  });
  if (done) {
    toast(t('action.done', { action: t('action.' + action) }));
    ctx.rerender();
  }
}

function billActions(ctx, b, cur) {
  const id = billId(b);
  const path = (what) => `/v1/bills/${seg(id)}/${what}`;
  const owed = OWED.includes(b.status);
  const buttons = [];
  if (owed) {
    buttons.push(h('button', { type: 'button', dataset: { action: 'waive' },
      onclick: () => act(ctx, { action: 'waive', target: id, path: path('waive') }) }, t('action.waive')));
  }
  if (owed && !b.disputed) {
    buttons.push(h('button', { type: 'button', dataset: { action: 'dispute' },
      onclick: () => act(ctx, { action: 'dispute', target: id, path: path('dispute') }) }, t('action.dispute')));
  }
  if (b.disputed) {
    const outcome = select('outcome', [['upheld', t('action.outcome.upheld')], ['waived', t('action.outcome.waived')]], 'upheld');
    buttons.push(h('button', { type: 'button', dataset: { action: 'resolve' },
      onclick: () => act(ctx, { action: 'resolve', target: id, path: path('resolve'),
        fields: [{ name: 'outcome', label: t('action.outcome'), control: outcome }],
        body: (v) => ({ reason: v.reason, outcome: v.outcome }) }) }, t('action.resolve')));
  }
  if (REFUNDABLE.includes(b.status)) {
    const amount = h('input', { name: 'amount', inputmode: 'decimal', size: 10 });
    buttons.push(h('button', { type: 'button', dataset: { action: 'refund' },
      onclick: () => act(ctx, { action: 'refund', target: id, path: path('refund'),
        fields: [{ name: 'amount', label: t('action.refund_amount'), control: amount }],
        body: (v) => {
          if (!v.amount.trim()) return { reason: v.reason };
          const minor = parseMoney(v.amount, cur);
          return minor === null ? null : { reason: v.reason, amount: Number(minor) };
        } }) }, t('action.refund')));
  }
  return h('div.buttons.actions', buttons);
}

function billCard(ctx, b) {
  const cur = b.currency || b.explanation?.currency || 'CNY';
  const id = billId(b);
  return h('section.bill.card', { dataset: { bill: id, status: b.status } },
    h('header',
      h('h4', id), ' ', statusBadge(b.status, b.disputed), ' ',
      h('span.amount', money(b.amount, cur)),
      b.collection_status ? h('span.muted', ` · ${t('detail.collection')}: ${tOr('collection.' + b.collection_status, b.collection_status)}`) : null),
    h('dl.facts',
      h('dt', t('common.lot')), h('dd', b.lot ?? '—'),
      h('dt', t('common.plate')), h('dd', b.plate ?? '—'),
      h('dt', t('common.entry')), h('dd', b.entry ? unixTime(b.entry) : '—'),
      h('dt', t('common.exit')), h('dd', b.exit ? unixTime(b.exit) : '—'),
      b.dispute_reason ? [h('dt', t('common.reason')), h('dd', b.dispute_reason)] : null),
    billActions(ctx, b, cur),
    h('details.explain', { open: true }, h('summary', t('explain.title')),
      h('h5', t('explain.reason_codes')), reasonCodes(b.reason_codes), explanation(b.explanation, cur)),
    h('details', h('summary', `${t('detail.reminders')} (${(b.reminders || []).length})`), remindersTable(b.reminders)),
    h('details', h('summary', `${t('detail.history')} (${(b.history || []).length})`), historyTable(b.history)));
}

export async function defaultDetailView(root, ctx, plate) {
  fill(root, loading());
  let d;
  try {
    d = await api('GET', '/v1/defaults/' + seg(plate));
  } catch (e) {
    if (e.status === 404) return fill(root, h('a.back', { href: '#/defaults' }, '← ' + t('common.back')), note(t('detail.no_driver'), 'error'));
    throw e;
  }
  const drv = d.driver || {};
  const cur = d.bills?.[0]?.currency || 'CNY';
  const score = h('input', { type: 'number', name: 'score', min: 0, max: 100000, size: 6 });
  const reinstate = h('button', { type: 'button', dataset: { action: 'reinstate' },
    onclick: () => act(ctx, { action: 'reinstate', target: plate, path: `/v1/defaults/${seg(plate)}/reinstate`,
      fields: [{ name: 'score', label: t('action.score'), control: score }],
      body: (v) => (v.score.trim() ? { reason: v.reason, score: Number(v.score) } : { reason: v.reason }) }) },
  t('action.reinstate'));
  const credit = table([
    { key: 'at', label: t('common.time'), render: (r) => unixTime(r.at) },
    { key: 'cause', label: t('detail.cause'), render: (r) => tOr('cause.' + r.cause, r.cause ?? '') },
    { key: 'bill', label: t('common.bill'), render: (r) => r.bill ?? '' },
    { key: 'delta', label: t('detail.delta'), num: true, render: (r) => (r.delta === undefined ? '' : String(r.delta)) },
    { key: 'score', label: t('detail.score'), num: true, render: (r) => (r.score === undefined ? '' : String(r.score)) },
    { key: 'by', label: t('detail.by'), render: (r) => [r.by ?? '', r.why ? ` (${r.why})` : ''] },
  ], d.credit_history || [], { id: 'credit-history' });
  fill(root,
    h('a.back', { href: '#/defaults' }, '← ' + t('common.back')),
    h('h2', t('detail.title', { plate: d.plate })),
    h('section.card#driver-card', { dataset: { driver: drv.id } },
      h('h3', t('detail.driver')),
      h('dl.facts',
        h('dt', t('detail.driver_id')), h('dd', drv.id ?? '—'),
        h('dt', t('detail.plates')), h('dd', drv.plates ?? '—'),
        h('dt', t('detail.score')), h('dd', String(drv.score ?? '—')),
        h('dt', t('detail.suspended')), h('dd', drv.suspended
          ? badge(t('detail.suspended_yes', { cause: tOr('cause.' + drv.suspend_cause, drv.suspend_cause || '') }), 'st-overdue')
          : t('detail.suspended_no')),
        h('dt', t('detail.unpaid')), h('dd', t('detail.unpaid_value', { count: drv.unpaid_count ?? 0, amount: money(drv.unpaid_amount ?? 0, cur) })),
        h('dt', t('detail.arrears')), h('dd', t('detail.unpaid_value', { count: d.arrears?.count ?? 0, amount: money(d.arrears?.amount ?? 0, cur) }))),
      h('div.buttons.actions', reinstate)),
    h('section', h('h3', t('detail.credit_history')), d.credit_history?.length ? credit : note(t('common.empty'))),
    h('section#bills', h('h3', t('detail.bills')), (d.bills || []).map((b) => billCard(ctx, b))));
  root.dataset.ready = '1';
}
