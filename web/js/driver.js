// A driver's own view: its account (GET /v1/me), its bills (GET /v1/me/bills), a bill with the
// fee explained row by row and its reason codes (GET /v1/me/bills/{bill}), paying it now
// (POST …/pay) and disputing it with a reason (POST …/dispute).

import { api, query, seg } from './api.js';
import { h, fill, table, note, loading, reasonDialog, toast } from './dom.js';
import { money, localTime, unixTime } from './format.js';
import { t, tOr } from './i18n.js';
import { explanation, reasonCodes } from './explain.js';
import { statusBadge } from './defaults.js';

const PAGE = 20;
const PAYABLE = ['pending', 'retry_scheduled', 'failed', 'overdue', 'defaulted'];

export async function driverBillsView(root, ctx) {
  fill(root, loading());
  let me;
  try {
    me = await api('GET', '/v1/me');
  } catch (e) {
    if (e.status === 404) return fill(root, note(t('driver.not_enrolled'), 'error'));
    throw e;
  }
  const out = h('div#bills-out');
  fill(root,
    h('h2', t('driver.title')),
    h('section.card#me-card',
      h('dl.facts',
        h('dt', t('detail.plates')), h('dd', me.plates.join('、')),
        h('dt', t('detail.score')), h('dd', String(me.score)),
        h('dt', t('detail.suspended')), h('dd', me.suspended ? t('detail.suspended_yes', { cause: '' }) : t('detail.suspended_no')),
        h('dt', t('driver.unpaid')), h('dd', t('detail.unpaid_value', { count: me.unpaid_count, amount: money(me.unpaid_amount) })))),
    out);
  let offset = 0;
  let rows = [];
  let total = 0;
  const columns = [
    { key: 'exit', label: t('common.exit'), render: (b) => localTime(b.exit) },
    { key: 'lot', label: t('common.lot') },
    { key: 'plate', label: t('common.plate') },
    { key: 'amount', label: t('common.amount'), num: true, render: (b) => money(b.amount, b.currency) },
    { key: 'status', label: t('common.status'), render: (b) => statusBadge(b.status, b.disputed) },
    { key: 'bill', label: t('common.bill'), render: (b) => h('a', { href: '#/bills/' + encodeURIComponent(b.bill) }, b.bill) },
  ];
  const page = async () => {
    const ans = await api('GET', '/v1/me/bills' + query({ limit: PAGE, offset }));
    rows = rows.concat(ans.items);
    total = ans.total;
    offset += PAGE;
    fill(out,
      rows.length ? table(columns, rows, { id: 'bills-table', rowData: (b) => ({ bill: b.bill }) }) : note(t('common.empty')),
      rows.length < total ? h('button#bills-more', { type: 'button', onclick: () => page().catch((e) => ctx.error(e, out)) },
        t('common.more')) : null);
    out.dataset.ready = '1';
  };
  await page();
}

export async function driverBillView(root, ctx, bill) {
  fill(root, loading());
  let b;
  try {
    b = await api('GET', '/v1/me/bills/' + seg(bill));
  } catch (e) {
    if (e.status !== 403 && e.status !== 404) throw e;
    return fill(root, h('a.back', { href: '#/bills' }, '← ' + t('common.back')),
      note(e.status === 403 ? t('app.forbidden') : t('driver.no_bill'), 'error'));
  }
  const cur = b.currency || 'CNY';
  const path = (what) => `/v1/me/bills/${seg(bill)}/${what}`;
  const pay = h('button.primary', { type: 'button', dataset: { action: 'pay' }, onclick: async () => {
    pay.disabled = true;
    try {
      await api('POST', path('pay'));
      toast(t('action.pay_requested'));
    } catch (e) {
      toast(t('action.failed', { message: e.message }), 'error');
    }
    pay.disabled = false;
    ctx.rerender();
  } }, t('action.pay'));
  const dispute = h('button', { type: 'button', dataset: { action: 'dispute' }, onclick: async () => {
    const done = await reasonDialog({
      title: t('action.confirm_title', { action: t('action.dispute'), target: bill }),
      submitLabel: t('action.dispute'),
      onSubmit: (v) => api('POST', path('dispute'), { reason: v.reason }),
    });
    if (done) {
      toast(t('action.done', { action: t('action.dispute') }));
      ctx.rerender();
    }
  } }, t('action.dispute'));
  const owed = PAYABLE.includes(b.status);
  fill(root,
    h('a.back', { href: '#/bills' }, '← ' + t('common.back')),
    h('h2', t('driver.bill')),
    h('section.card.bill#bill-card', { dataset: { bill: b.bill, status: b.status, disputed: b.disputed ? '1' : '0' } },
      h('header', h('h3', b.bill), ' ', statusBadge(b.status, b.disputed), ' ', h('span.amount#bill-amount', money(b.amount, cur))),
      h('dl.facts',
        h('dt', t('common.lot')), h('dd', b.lot),
        h('dt', t('common.plate')), h('dd', b.plate),
        h('dt', t('common.entry')), h('dd', localTime(b.entry)),
        h('dt', t('common.exit')), h('dd', localTime(b.exit)),
        b.dispute_reason ? [h('dt', t('common.reason')), h('dd', b.dispute_reason)] : null),
      h('div.buttons.actions', owed ? pay : null, owed && !b.disputed ? dispute : null)),
    h('section.card', h('h3', t('explain.title')),
      h('h4', t('explain.reason_codes')), reasonCodes(b.reason_codes),
      explanation(b.explanation, cur)),
    h('section.card', h('h3', t('detail.history')),
      table([
        { key: 'at', label: t('common.time'), render: (r) => unixTime(r.at) },
        { key: 'to', label: t('common.status'), render: (r) => [r.from ? tOr('status.' + r.from, r.from) + ' → ' : '', tOr('status.' + r.to, r.to ?? '')] },
        { key: 'cause', label: t('detail.cause'), render: (r) => tOr('cause.' + r.cause, r.cause ?? '') },
      ], b.history || [], { id: 'bill-history' })));
  root.dataset.ready = '1';
}
