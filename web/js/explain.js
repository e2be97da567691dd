// A bill's fee explanation (the tariff engine's rows, caps and discount: docs/tariffs.md) and its
// reason codes (docs/api.md), for staff and drivers alike.

import { h, table } from './dom.js';
import { money, localTime, hoursMinutes } from './format.js';
import { t, tOr } from './i18n.js';

export function bandName(band) {
  return tOr('band.' + band, band);
}

/** One reason code ("credit_ok", "match:exact", "discount:50%", "cap:band:night") in words. */
export function reasonText(code) {
  if (code.startsWith('discount:')) return t('code.discount', { percent: code.slice(9) });
  if (code.startsWith('cap:band:')) return t('code.cap:band', { band: bandName(code.slice(9)) });
  return tOr('code.' + code, code);
}

export function reasonCodes(codes) {
  return h('ul.codes', { id: 'reason-codes' },
    (codes || []).map((c) => h('li', { dataset: { code: c }, title: c }, reasonText(c))));
}

/** The explanation as a table of rows (one per run of units), caps, discount and total. */
export function explanation(ex, currency) {
  if (!ex || typeof ex !== 'object') return h('p.note', t('explain.none'));
  const cur = ex.currency || currency || 'CNY';
  const d = hoursMinutes(ex.duration_seconds);
  const facts = h('dl.facts',
    h('dt', t('explain.tariff')), h('dd', `${ex.tariff_id ?? '—'} (${ex.tariff_version ?? ''})`),
    h('dt', t('common.entry')), h('dd', localTime(ex.entry)),
    h('dt', t('common.exit')), h('dd', localTime(ex.exit)),
    h('dt', t('explain.duration')), h('dd', t('explain.duration_value', d)),
    h('dt', t('explain.free')), h('dd', t('explain.free_value', { minutes: ex.free_minutes ?? 0 }),
      ex.free_deducted ? ' ' + t('explain.free_deducted') : ''),
    ex.rules && ex.rules !== 'default' ? [h('dt', ''), h('dd', t('explain.rules', { rules: ex.rules }))] : null);
  const rows = table([
    { key: 'period', label: t('explain.period'),
      render: (r) => `${localTime(r.start)} – ${localTime(r.end)}` },
    { key: 'band', label: t('explain.band'),
      render: (r) => [bandName(r.band), r.first_period ? h('span.badge', ' ' + t('explain.first_period')) : null] },
    { key: 'units', label: t('explain.units'),
      render: (r) => t('explain.unit_value', { count: r.count, minutes: r.unit_minutes }) },
    { key: 'price', label: t('explain.price'), num: true,
      render: (r) => r.charged_each !== r.unit_price
        ? [h('s', money(r.unit_price, cur)), ' ', money(r.charged_each, cur)]
        : money(r.unit_price, cur) },
    { key: 'charged', label: t('explain.charged'), num: true, render: (r) => money(r.charged, cur) },
  ], ex.rows || [], { id: 'explain-rows' });
  const caps = (ex.caps || []).map((c) => h('li', c.kind === 'band'
    ? t('explain.cap_band', { band: bandName(c.band), cap: money(c.cap, cur), occurrence: c.occurrence,
      before: money(c.before, cur), after: money(c.after, cur) })
    : t('explain.cap_24h', { cap: money(c.cap, cur), from: localTime(c.from), to: localTime(c.to),
      before: money(c.before, cur), after: money(c.after, cur) })));
  const totals = h('dl.totals',
    h('dt', t('explain.subtotal')), h('dd.num', money(ex.subtotal, cur)),
    ex.discount ? [h('dt', t('explain.discount', { percent: ex.discount_percent })),
      h('dd.num', '-' + money(ex.discount, cur))] : null,
    h('dt', t('explain.total')), h('dd.num#explain-total', money(ex.amount, cur)));
  return h('section.explain', facts, rows,
    caps.length ? [h('h4', t('explain.caps')), h('ul.caps', caps)] : null, totals);
}
