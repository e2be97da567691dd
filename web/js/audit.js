// The audit log (GET /v1/audit): every staff and operator action, newest first, with filters on
// lot, actor, action and time; admin and city see every stream, an operator its own lots.

import { api, query } from './api.js';
import { h, fill, table, note, loading, field, select } from './dom.js';
import { money, localTime } from './format.js';
import { t, tOr } from './i18n.js';

const ACTIONS = ['dispute', 'resolve', 'waive', 'refund', 'charge', 'pay', 'reinstate', 'lane_open',
  'pass_add', 'pass_del', 'allow_add', 'allow_del', 'reassign', 'merge', 'split', 'driver_enrol',
  'driver_update', 'driver_delete'];

const filters = { lot: '', actor: '', action: '', from: '', to: '', limit: '50' };

function details(e) {
  const parts = [];
  if (e.outcome) parts.push(tOr('action.outcome.' + e.outcome, e.outcome));
  if (e.amount !== undefined && e.amount !== '') parts.push(money(e.amount));
  if (e.from && e.action !== 'pass_add') parts.push(tOr('status.' + e.from, e.from) + (e.status ? ' → ' + tOr('status.' + e.status, e.status) : ''));
  if (e.plate) parts.push(e.plate);
  if (e.score !== undefined && e.score !== '') parts.push(`${t('detail.score')} ${e.score}`);
  if (e.driver) parts.push(e.driver);
  return parts.join(' · ');
}

export async function auditView(root, ctx) {
  const lots = ctx.me.lots;
  const lot = select('lot', [['', t('common.all')], ...lots.map((l) => [l.id, `${l.name || l.id} (${l.id})`])], filters.lot);
  const actor = h('input', { name: 'actor', value: filters.actor, size: 12 });
  const action = select('action', [['', t('common.all')], ...ACTIONS.map((a) => [a, t('action_name.' + a)])], filters.action);
  const from = h('input', { type: 'date', name: 'from', value: filters.from });
  const to = h('input', { type: 'date', name: 'to', value: filters.to });
  const limit = select('limit', ['20', '50', '100', '500'].map((v) => [v, v]), filters.limit);
  const form = h('form.filters#audit-filters',
    field(t('common.lot'), lot), field(t('audit.actor'), actor), field(t('audit.action'), action),
    field(t('common.from'), from), field(t('common.to'), to), field(t('defaults.limit'), limit),
    h('button.primary', { type: 'submit' }, t('common.apply')));
  const out = h('div#audit-out');
  fill(root, h('h2', t('audit.title')), form, out);

  const columns = [
    { key: 'time', label: t('common.time'), render: (e) => localTime(e.time) },
    { key: 'actor', label: t('audit.actor') },
    { key: 'role', label: t('audit.role'), render: (e) => tOr('role.' + e.role, e.role ?? '') },
    { key: 'action', label: t('audit.action'), render: (e) => tOr('action_name.' + e.action, e.action) },
    { key: 'target', label: t('audit.target') },
    { key: 'lot', label: t('common.lot'), render: (e) => e.lot || e.source || '' },
    { key: 'reason', label: t('common.reason') },
    { key: 'details', label: t('audit.details'), render: details },
  ];
  let rows = [];
  let cursor = null;
  const page = async (first) => {
    if (first) {
      delete out.dataset.ready;
      fill(out, loading());
    }
    const ans = await api('GET', '/v1/audit' + query({
      lot: filters.lot, actor: filters.actor, action: filters.action,
      // Local days of Asia/Shanghai, as the lots' times are.
      from: filters.from ? filters.from + 'T00:00:00+08:00' : '',
      to: filters.to ? filters.to + 'T23:59:59+08:00' : '',
      limit: filters.limit, cursor: first ? undefined : cursor,
    }));
    rows = first ? ans.items : rows.concat(ans.items);
    cursor = ans.next_cursor;
    fill(out,
      rows.length ? table(columns, rows, { id: 'audit-table', rowData: (e) => ({ id: e.id, action: e.action }) })
        : note(t('common.empty')),
      cursor ? h('button#audit-more', { type: 'button', onclick: () => page(false).catch((e) => ctx.error(e, out)) },
        t('common.more')) : null);
    out.dataset.ready = '1';
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(filters, { lot: lot.value, actor: actor.value.trim(), action: action.value,
      from: from.value, to: to.value, limit: limit.value });
    page(true).catch((err) => ctx.error(err, out));
  });
  await page(true);
}
