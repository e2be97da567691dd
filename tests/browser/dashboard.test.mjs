// The web dashboard in headless Chromium (Debian's chromium, driven by playwright-core), against the
// real gateway, billing and Redis that tests/integration/test_dashboard.py starts; it passes:
//
//   PARK_URL           the gateway serving the built web root (build/share/park/web)
//   PARK_URL_NOCHART   a second gateway whose gateway.web_root lacks ECharts and holds symbolic
//                      links leading out of it (leak.txt, up/)
//   PARK_TOKENS        JSON: admin, city, op_west, op_river, driver (drv-owes), driver_good
//   PARK_FIXTURE       JSON: drivers, bills (paid[], defaulted, overdue, owed), plates, lots by operator
//   PARK_ARTIFACTS_DIR where the screenshots go
//   PARK_CHROMIUM      the browser (/usr/bin/chromium)
//
// Every page is checked for script errors and Content-Security-Policy violations as it closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { dictionaries } from '../../web/js/i18n.js';
import { money, parseMoney, addMinor, localTime } from '../../web/js/format.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const URL0 = process.env.PARK_URL;
const URL_NOCHART = process.env.PARK_URL_NOCHART;
const TOKENS = JSON.parse(process.env.PARK_TOKENS || '{}');
const FIX = JSON.parse(process.env.PARK_FIXTURE || '{}');
const ART = process.env.PARK_ARTIFACTS_DIR || path.join(ROOT, 'build', 'test-artifacts', 'dashboard');
const zh = dictionaries['zh-CN'];
const en = dictionaries.en;
const CJK = /[\u3400-\u9fff\uff00-\uffef]/;

assert.ok(URL0, 'PARK_URL is not set: run through tests/integration/test_dashboard.py');
fs.mkdirSync(ART, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.PARK_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
});
after(async () => {
  await browser?.close();
});

/** GET path of the API with a token: [status, JSON]. */
async function apiGet(p, token, base = URL0) {
  const r = await fetch(base + p, { headers: { Authorization: 'Bearer ' + token } });
  return [r.status, await r.json()];
}

async function apiOk(p, token) {
  const [st, body] = await apiGet(p, token);
  assert.equal(st, 200, `${p}: ${JSON.stringify(body)}`);
  return body;
}

/** A raw HTTP request: the path goes out exactly as given (no URL normalisation). */
function raw(method, p, headers = {}, base = URL0) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A fresh browser context (its own sessionStorage and localStorage) on the dashboard, logged in
 * with token when given.  close(name) saves a screenshot and checks that the page had no script
 * error and no CSP violation (console errors matching `allow` are expected ones).
 */
async function open(token, { base = URL0, lang, hash = '', allow = [] } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  if (lang) await context.addInitScript((l) => localStorage.setItem('park.lang', l), lang);
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !allow.some((re) => re.test(m.text()))) errors.push('console: ' + m.text());
  });
  await page.goto(`${base}/dashboard/${token ? '#token=' + token : hash}`);
  const close = async (name) => {
    if (name) await page.screenshot({ path: path.join(ART, name + '.png'), fullPage: true });
    const csp = await page.evaluate(() => window.__csp);
    await context.close();
    assert.deepEqual(csp, [], 'Content-Security-Policy violations');
    assert.deepEqual(errors, [], 'errors in the page');
  };
  return { page, close };
}

const cellTexts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

async function chartData(page) {
  return page.evaluate(() => {
    const o = window.echarts.getInstanceByDom(document.getElementById('revenue-chart')).getOption();
    return { dates: o.xAxis[0].data, series: o.series.map((s) => ({ name: s.name, data: s.data })) };
  });
}

/* ---- files and strings the browser does not need to check ------------------------------------ */

test('both languages have the same keys, and amounts are formatted exactly', () => {
  assert.deepEqual(Object.keys(en).sort(), Object.keys(zh).sort());
  for (const [k, v] of Object.entries(en)) {
    if (k === 'lang.switch') continue;
    assert.ok(!CJK.test(v), `en ${k} is not translated: ${v}`);
  }
  assert.equal(money(0), '¥0.00');
  assert.equal(money(5), '¥0.05');
  assert.equal(money(-5), '-¥0.05');
  assert.equal(money(123456789), '¥1,234,567.89');
  assert.equal(money('9007199254740993'), '¥90,071,992,547,409.93'); // beyond doubles: exact
  assert.equal(money(1.5), '—'); // not an integer: never rounded into an amount
  assert.equal(parseMoney('12.5'), '1250');
  assert.equal(parseMoney('0.07'), '7');
  assert.equal(parseMoney('1,200'), '120000');
  assert.equal(parseMoney('1.234'), null);
  assert.equal(parseMoney('-1'), null);
  assert.equal(addMinor('9007199254740993', 1), '9007199254740994');
  assert.equal(localTime('2026-11-27T10:05:20+08:00'), '2026-11-27 10:05:20');
});

/* ---- (5) static serving ---------------------------------------------------------------------- */

test('static files: traversal refused, types, caching, security headers, HEAD', async () => {
  const refused = [
    '/dashboard/../../../etc/passwd', '/dashboard/%2e%2e/%2e%2e/etc/passwd',
    '/dashboard/..%2f..%2fetc%2fpasswd', '/dashboard/js%2fapp.js', '/dashboard/js%2Fapp.js',
    '/dashboard/js%5capp.js', '/dashboard/js\\app.js', '/dashboard/index.html%00.js',
    '/dashboard/./index.html', '/dashboard//etc/passwd', '/dashboard/js/../index.html',
    '/dashboard/%', '/dashboard/%g1',
  ];
  for (const p of refused) {
    const r = await raw('GET', p);
    assert.ok(r.status === 400 || r.status === 404, `${p}: ${r.status}`);
    assert.equal(r.headers['content-type'], 'application/json', p);
    assert.ok(!r.body.toString().includes('root:'), p);
  }
  assert.equal((await raw('GET', '/dashboard/..%2f..%2fetc%2fpasswd')).status, 400);
  assert.equal((await raw('GET', '/dashboard/../../../etc/passwd')).status, 400);
  for (const p of ['/dashboard/nope.html', '/dashboard/.hidden', '/dashboard/js/nope.js', '/dashboardx']) {
    const r = await raw('GET', p);
    assert.equal(r.status, 404, p);
    assert.equal(JSON.parse(r.body).error, 'not_found', p);
  }
  // Links that lead out of the web root are not served.
  for (const p of ['/dashboard/leak.txt', '/dashboard/up/secret.txt', '/dashboard/up/web/index.html']) {
    const r = await raw('GET', p, {}, URL_NOCHART);
    assert.equal(r.status, 404, p);
    assert.ok(!r.body.toString().includes('outside the web root'), p);
  }

  const index = await raw('GET', '/dashboard/');
  assert.equal(index.status, 200);
  assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
  assert.deepEqual(index.body, fs.readFileSync(path.join(ROOT, 'web', 'index.html')));
  const csp = index.headers['content-security-policy'];
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(index.headers['x-content-type-options'], 'nosniff');
  assert.equal(index.headers['cache-control'], 'no-cache');
  assert.match(index.headers.etag, /^"[0-9a-f]{32}"$/);
  assert.match(index.headers['last-modified'], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  // Errors carry the security headers too.
  assert.equal((await raw('GET', '/dashboard/nope')).headers['x-content-type-options'], 'nosniff');

  const types = { '/dashboard/js/app.js': 'text/javascript; charset=utf-8', '/dashboard/app.css': 'text/css; charset=utf-8',
    '/dashboard/favicon.svg': 'image/svg+xml', '/dashboard/vendor/echarts.min.js': 'text/javascript; charset=utf-8' };
  for (const [p, type] of Object.entries(types)) {
    const r = await raw('GET', p);
    assert.equal(r.status, 200, p);
    assert.equal(r.headers['content-type'], type, p);
  }
  const ech = await raw('GET', '/dashboard/vendor/echarts.min.js');
  assert.deepEqual(ech.body, fs.readFileSync(path.join(ROOT, 'node_modules', 'echarts', 'dist', 'echarts.min.js')));

  const head = await raw('HEAD', '/dashboard/index.html');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(Number(head.headers['content-length']), index.body.length);
  assert.equal(head.headers.etag, index.headers.etag);
  const again = await raw('GET', '/dashboard/', { 'If-None-Match': index.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal((await raw('GET', '/dashboard/', { 'If-None-Match': '"other", W/' + index.headers.etag })).status, 304);
  assert.equal((await raw('GET', '/dashboard/', { 'If-None-Match': '"other"' })).status, 200);
  assert.equal((await raw('GET', '/dashboard/', { 'If-Modified-Since': index.headers['last-modified'] })).status, 304);

  const root = await raw('GET', '/');
  assert.equal(root.status, 302);
  assert.equal(root.headers.location, '/dashboard/');
  assert.equal((await raw('GET', '/dashboard')).status, 301);
  const post = await raw('POST', '/dashboard/');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  // whoami: who a token is, and nothing without one.
  assert.equal((await raw('GET', '/v1/whoami')).status, 401);
  const [st, me] = await apiGet('/v1/whoami', TOKENS.op_west);
  assert.equal(st, 200);
  assert.equal(me.role, 'operator');
  assert.equal(me.scope, 'op-west');
  assert.equal(me.name, 'west-desk');
  assert.deepEqual(me.lots.map((l) => l.id), FIX.lots['op-west']);
});

/* ---- (1) the operator ------------------------------------------------------------------------ */

test('operator: the chart and the table match the revenue report; no other operator\'s lot', async () => {
  const { page, close } = await open(TOKENS.op_west);
  await page.waitForSelector('#revenue-out[data-ready="1"]');
  await page.waitForSelector('#revenue-chart[data-ready="1"]');
  // The token left the address bar for this tab's session storage.
  assert.equal(new URL(page.url()).hash, '#/revenue');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('park.token')), TOKENS.op_west);
  assert.deepEqual(await cellTexts(page, '#nav a'), [zh['nav.revenue'], zh['nav.audit']]);

  const from = await page.inputValue('#revenue-filters input[name=from]');
  const to = await page.inputValue('#revenue-filters input[name=to]');
  const byDay = await apiOk(`/v1/reports/revenue?from=${from}&to=${to}&group=day`, TOKENS.op_west);
  const byLot = await apiOk(`/v1/reports/revenue?from=${from}&to=${to}&group=lot`, TOKENS.op_west);
  assert.deepEqual(byDay.lots, FIX.lots['op-west']);

  // The chart holds the report's integers, lot by lot and day by day.
  const chart = await chartData(page);
  assert.deepEqual(chart.series.map((s) => s.name), byDay.lots);
  assert.equal(chart.dates[0], from);
  assert.equal(chart.dates[chart.dates.length - 1], to);
  const want = new Map(byDay.rows.map((r) => [`${r.lot_id}/${r.date}`, r.billed]));
  let total = 0;
  let days = 0;
  for (const s of chart.series) {
    s.data.forEach((v, i) => {
      assert.ok(Number.isInteger(v), `${s.name} ${chart.dates[i]}: ${v}`);
      assert.equal(v, want.get(`${s.name}/${chart.dates[i]}`) ?? 0, `${s.name} ${chart.dates[i]}`);
      total += v;
      if (v > 0) days++;
    });
  }
  assert.equal(total, byDay.totals.billed);
  assert.equal(total, byLot.totals.billed);
  assert.ok(total > 0 && days >= 3, `the chart shows ${days} bars worth ${total}`);
  // The tooltip of the last day with bills sums its lots to the fen.
  const last = byDay.rows.map((r) => r.date).sort().pop();
  const dayTotal = byDay.rows.filter((r) => r.date === last).reduce((s, r) => s + r.billed, 0);
  const box = await page.locator('#revenue-chart').boundingBox();
  const x = await page.evaluate((d) => window.echarts.getInstanceByDom(document.getElementById('revenue-chart'))
    .convertToPixel({ xAxisIndex: 0 }, d), last);
  await page.mouse.move(box.x + x, box.y + box.height / 2);
  await page.waitForSelector('.chart-tip', { state: 'visible' });
  await page.waitForFunction((want) => document.querySelector('.chart-tip').textContent.includes(want),
    `${zh['common.total']}: ${money(dayTotal)}`);
  assert.ok((await page.textContent('.chart-tip')).includes(last));

  // The table: a row per lot and the totals, every money column as the report says.
  const rows = await page.$$eval('#revenue-table tbody tr', (trs) => trs.map((tr) => {
    const o = { lot: tr.dataset.lot };
    for (const td of tr.querySelectorAll('td')) o[td.dataset.col] = td.textContent.trim();
    return o;
  }));
  assert.deepEqual(rows.map((r) => r.lot), byLot.rows.map((r) => r.lot_id));
  for (const [i, r] of byLot.rows.entries()) {
    for (const k of ['billed', 'paid', 'paid_late', 'paid_on_site', 'outstanding', 'overdue', 'defaulted', 'waived', 'refunded']) {
      assert.equal(rows[i][k], money(r[k]), `${r.lot_id} ${k}`);
    }
    assert.equal(rows[i].exits, String(r.exits));
    assert.equal(rows[i].bills, String(r.bills));
  }
  const foot = await page.$eval('#revenue-table tfoot tr', (tr) => tr.querySelector('[data-col=billed]').textContent.trim());
  assert.equal(foot, money(byLot.totals.billed));
  assert.equal(await page.textContent('[data-summary=billed] .value'), money(byLot.totals.billed));

  // Occupancy now, of its lots only.
  const cards = await page.$$eval('#occupancy [data-lot]', (els) => els.map((e) => ({
    lot: e.dataset.lot, open: e.querySelector('[data-k=open]').textContent })));
  assert.deepEqual(cards.map((c) => c.lot), FIX.lots['op-west']);
  for (const c of cards) {
    const occ = await apiOk(`/v1/lots/${c.lot}/occupancy`, TOKENS.op_west);
    assert.equal(c.open, String(occ.open_sessions));
  }
  assert.ok(cards.some((c) => c.open !== '0'), 'a car is parked in LOT-A');

  // Another operator's lot appears nowhere, and the API refuses it anyway.
  const body = await page.textContent('body');
  for (const other of FIX.lots['op-river']) {
    assert.ok(!body.includes(other), `${other} is shown to op-west`);
    assert.equal((await apiGet(`/v1/lots/${other}/occupancy`, TOKENS.op_west))[0], 403);
  }
  const lotOptions = await page.$$eval('#revenue-filters select[name=lot] option', (os) => os.map((o) => o.value));
  assert.deepEqual(lotOptions, ['', ...FIX.lots['op-west']]);

  // Another figure: collected = paid + paid late + paid on site.
  await page.selectOption('#revenue-filters select[name=metric]', 'collected');
  await page.waitForSelector('#revenue-chart[data-ready="1"]');
  const collected = await chartData(page);
  const sum = collected.series.flatMap((s) => s.data).reduce((a, b) => a + b, 0);
  assert.equal(sum, byDay.totals.paid + byDay.totals.paid_late + byDay.totals.paid_on_site);
  await page.selectOption('#revenue-filters select[name=metric]', 'billed');
  await page.waitForSelector('#revenue-chart[data-ready="1"]');

  // A view of another role is not reachable by its address.
  await page.evaluate(() => { location.hash = '#/defaults'; });
  await page.waitForFunction(() => location.hash === '#/revenue');
  await page.waitForSelector('#revenue-chart[data-ready="1"]');
  await close('operator-revenue');

  // The other operator sees its lot and nothing of op-west's.
  const river = await open(TOKENS.op_river);
  await river.page.waitForSelector('#revenue-out[data-ready="1"]');
  const rchart = await chartData(river.page);
  assert.deepEqual(rchart.series.map((s) => s.name), FIX.lots['op-river']);
  const rbody = await river.page.textContent('body');
  for (const mine of FIX.lots['op-west']) assert.ok(!rbody.includes(mine), `${mine} is shown to op-river`);
  await river.close('operator-river');
});

test('the dashboard says so when the chart library is not installed', async () => {
  const { page, close } = await open(TOKENS.op_west, { base: URL_NOCHART,
    allow: [/Failed to load resource.*404/, /Refused to execute script from .*vendor\/echarts\.min\.js/] });
  await page.waitForSelector('#revenue-out[data-ready="1"]');
  assert.equal((await page.textContent('.chart-missing')).trim(), zh['revenue.chart_missing']);
  assert.equal(await page.$('#revenue-chart'), null);
  assert.ok(await page.$('#revenue-table tbody tr'), 'the table is still there');
  await close('operator-no-chart-library');
});

/* ---- (2) city staff -------------------------------------------------------------------------- */

test('city staff filter the defaults, waive one with a reason and find it in the audit log', async () => {
  const { page, close } = await open(TOKENS.city);
  await page.waitForSelector('#defaults-out[data-ready="1"]');
  assert.equal(new URL(page.url()).hash, '#/defaults');
  const listed = () => page.$$eval('#defaults-table tbody tr', (trs) => trs.map((tr) => tr.dataset.bill));
  const { defaulted, overdue } = FIX.bills;
  const all = await apiOk('/v1/defaults', TOKENS.city);
  assert.deepEqual(await listed(), all.items.map((i) => i.bill));
  assert.deepEqual(await listed(), [defaulted, overdue]);
  const apply = async () => {
    await page.click('#defaults-filters button[type=submit]');
    await page.waitForSelector('#defaults-out[data-ready="1"]');
  };
  // Each filter, as the API filters.
  await page.check('#defaults-filters input[value=defaulted]');
  await apply();
  assert.deepEqual(await listed(), [defaulted]);
  await page.uncheck('#defaults-filters input[value=defaulted]');
  await page.selectOption('#defaults-filters select[name=district]', '上城区');
  await apply();
  assert.deepEqual(await listed(), (await apiOk('/v1/defaults?district=' + encodeURIComponent('上城区'), TOKENS.city)).items.map((i) => i.bill));
  assert.deepEqual(await listed(), [overdue]);
  await page.selectOption('#defaults-filters select[name=district]', '');
  await page.selectOption('#defaults-filters select[name=lot]', 'LOT-A');
  await apply();
  assert.deepEqual(await listed(), [defaulted]);
  await page.selectOption('#defaults-filters select[name=lot]', '');
  const amount = all.items.find((i) => i.bill === defaulted).amount;
  await page.fill('#defaults-filters input[name=min_amount]', money(amount).replace('¥', ''));
  await apply();
  assert.deepEqual(await listed(), (await apiOk(`/v1/defaults?min_amount=${amount}`, TOKENS.city)).items.map((i) => i.bill));
  assert.ok((await listed()).includes(defaulted));
  await page.fill('#defaults-filters input[name=min_amount]', '');
  await page.fill('#defaults-filters input[name=min_age_days]', '30');
  await apply();
  assert.deepEqual(await listed(), [defaulted]);
  await page.fill('#defaults-filters input[name=min_age_days]', '');
  await apply();
  await close('city-defaults');

  // The plate's detail: the driver, its credit history, each bill with its explanation.
  const det = await open(TOKENS.city);
  const p = det.page;
  await p.waitForSelector('#defaults-out[data-ready="1"]');
  await p.click(`#defaults-table tr[data-bill="${defaulted}"] [data-col=plate] a`);
  await p.waitForSelector('#view-defaults[data-ready="1"]');
  const plate = FIX.plates.bad;
  const detail = await apiOk('/v1/defaults/' + encodeURIComponent(plate), TOKENS.city);
  const card = `section.bill[data-bill="${defaulted}"]`;
  assert.equal(await p.getAttribute(card, 'data-status'), 'defaulted');
  const apiBill = detail.bills.find((b) => b.bill === defaulted);
  assert.equal(await p.$$eval(`${card} #explain-rows tbody tr`, (t) => t.length), apiBill.explanation.rows.length);
  assert.deepEqual(await p.$$eval(`${card} #reason-codes li`, (l) => l.map((x) => x.dataset.code)), apiBill.reason_codes);
  assert.equal(await p.$$eval('#credit-history tbody tr', (t) => t.length), detail.credit_history.length);
  assert.ok((await p.textContent(card)).includes(`${zh['detail.reminders']} (${apiBill.reminders.length})`));
  assert.ok(apiBill.reminders.length > 0, 'billing sent reminders');

  // Waive: the reason is required.
  await p.click(`${card} button[data-action=waive]`);
  await p.waitForSelector('#action-dialog[open]');
  await p.click('#action-dialog button[type=submit]');
  assert.equal((await p.textContent('#action-dialog .note.error')).trim(), zh['action.reason_required']);
  assert.ok(await p.$('#action-dialog[open]'), 'the dialog stays open without a reason');
  assert.equal((await apiOk('/v1/bills/' + encodeURIComponent(defaulted), TOKENS.city)).status, 'defaulted');
  const reason = '停车场道闸故障，经核实豁免 (dashboard test)';
  await p.fill('#action-dialog textarea[name=reason]', reason);
  await p.click('#action-dialog button[type=submit]');
  await p.waitForSelector(`${card}[data-status="waived"]`);
  assert.equal(await p.$('#action-dialog'), null);
  assert.equal((await apiOk('/v1/bills/' + encodeURIComponent(defaulted), TOKENS.city)).status, 'waived');
  await det.close('city-default-detail');

  // The audit log has it: actor, action, target and reason.
  const au = await open(TOKENS.city, { lang: 'zh-CN' });
  await au.page.waitForSelector('#defaults-out[data-ready="1"]');
  await au.page.click('#nav a[data-view=audit]');
  await au.page.waitForSelector('#audit-out[data-ready="1"]');
  await au.page.selectOption('#audit-filters select[name=action]', 'waive');
  await au.page.click('#audit-filters button[type=submit]');
  await au.page.waitForSelector('#audit-out[data-ready="1"]');
  const entries = await au.page.$$eval('#audit-table tbody tr', (trs) => trs.map((tr) => {
    const o = { kind: tr.dataset.action };
    for (const td of tr.querySelectorAll('td')) o[td.dataset.col] = td.textContent.trim();
    return o;
  }));
  assert.equal(entries.length, 1, JSON.stringify(entries));
  assert.deepEqual([entries[0].kind, entries[0].action, entries[0].target, entries[0].reason, entries[0].actor, entries[0].lot],
    ['waive', zh['action_name.waive'], defaulted, reason, 'city-clerk', 'LOT-A']);
  const [e] = (await apiOk('/v1/audit?action=waive', TOKENS.city)).items;
  assert.equal(entries[0].time, localTime(e.time));
  await au.close('city-audit');
});

/* ---- (3) the driver -------------------------------------------------------------------------- */

test('a driver reads a bill\'s explanation, disputes it and asks to pay', async () => {
  const bill = FIX.bills.owed;
  const { page, close } = await open(TOKENS.driver, { allow: [/Failed to load resource.*403/] });
  await page.waitForSelector('#bills-out[data-ready="1"]');
  assert.deepEqual(await cellTexts(page, '#nav a'), [zh['nav.bills']]);
  assert.deepEqual(await page.$$eval('#bills-table tbody tr', (t) => t.map((r) => r.dataset.bill)), [bill]);
  await page.click(`#bills-table a[href="#/bills/${encodeURIComponent(bill)}"]`);
  await page.waitForSelector('#view-bills[data-ready="1"]');
  const b = await apiOk('/v1/me/bills/' + encodeURIComponent(bill), TOKENS.driver);
  // The fee row by row, the caps and the total; the reason codes in words.
  const lines = await page.$$eval('#explain-rows tbody tr', (trs) => trs.map((tr) => ({
    charged: tr.querySelector('[data-col=charged]').textContent.trim(),
    units: tr.querySelector('[data-col=units]').textContent.trim() })));
  assert.ok(b.explanation.rows.length >= 3, 'a fee over several bands');
  assert.deepEqual(lines.map((l) => l.charged), b.explanation.rows.map((r) => money(r.charged)));
  assert.deepEqual(lines.map((l) => l.units), b.explanation.rows.map((r) => `${r.count} × ${r.unit_minutes} 分钟`));
  assert.equal(await page.textContent('#explain-total'), money(b.explanation.amount));
  assert.equal(await page.textContent('#bill-amount'), money(b.amount));
  assert.equal(await page.$$eval('.explain ul.caps li', (l) => l.length), b.explanation.caps.length);
  const codes = await page.$$eval('#reason-codes li', (l) => l.map((x) => [x.dataset.code, x.textContent]));
  assert.deepEqual(codes.map((c) => c[0]), b.reason_codes);
  assert.ok(b.reason_codes.includes('cap:24h') && b.reason_codes.includes('credit_ok'));
  assert.equal(codes.find((c) => c[0] === 'credit_ok')[1], zh['code.credit_ok']);
  assert.equal(codes.find((c) => c[0] === 'cap:24h')[1], zh['code.cap:24h']);
  await page.screenshot({ path: path.join(ART, 'driver-bill.png'), fullPage: true });

  // Dispute, with a reason.
  await page.click('#bill-card button[data-action=dispute]');
  await page.waitForSelector('#action-dialog[open]');
  await page.fill('#action-dialog textarea[name=reason]', '那天我的车不在杭州');
  await page.click('#action-dialog button[type=submit]');
  await page.waitForSelector('#bill-card[data-disputed="1"]');
  assert.equal(await page.$('#bill-card button[data-action=dispute]'), null);
  const after = await apiOk('/v1/me/bills/' + encodeURIComponent(bill), TOKENS.driver);
  assert.equal(after.disputed, true);
  assert.equal(after.dispute_reason, '那天我的车不在杭州');
  // Pay now still goes through for a disputed bill (docs/api.md).
  await page.click('#bill-card button[data-action=pay]');
  await page.waitForSelector(`.toast >> text=${zh['action.pay_requested']}`);
  const [pst] = await apiGet('/v1/audit?action=pay', TOKENS.admin);
  assert.equal(pst, 200);
  assert.ok((await apiOk('/v1/audit?action=pay', TOKENS.admin)).items.some((i) => i.target === bill));
  await page.screenshot({ path: path.join(ART, 'driver-disputed.png'), fullPage: true });

  // Another driver's bill: refused.
  await page.evaluate((id) => { location.hash = '#/bills/' + encodeURIComponent(id); }, FIX.bills.defaulted);
  await page.waitForSelector(`#view-bills .note.error >> text=${zh['app.forbidden']}`);
  await close('driver-other-bill-forbidden');
});

/* ---- (4) the English switch ------------------------------------------------------------------ */

test('the English switch changes every label, and stays', async () => {
  const { page, close } = await open(TOKENS.op_west);
  await page.waitForSelector('#revenue-out[data-ready="1"]');
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  const heads = () => cellTexts(page, '#revenue-table thead th');
  const zhHeads = await heads();
  assert.equal(zhHeads[5], zh['field.billed']);
  await page.click('#lang');
  await page.waitForSelector('html[lang=en]');
  await page.waitForSelector('#revenue-out[data-ready="1"]');
  assert.deepEqual(await cellTexts(page, '#nav a'), [en['nav.revenue'], en['nav.audit']]);
  assert.equal((await page.textContent('#view-revenue h2')).trim(), en['revenue.title']);
  const enHeads = await heads();
  assert.equal(enHeads[5], en['field.billed']);
  assert.equal(enHeads.length, zhHeads.length);
  for (let i = 0; i < enHeads.length; i++) assert.notEqual(enHeads[i], zhHeads[i]);
  assert.equal((await page.textContent('#lang')).trim(), en['lang.switch']);
  assert.equal(await page.title(), en['app.title']);
  // No Chinese left but the data (lot names, districts).
  const strip = (s) => ['西湖文化广场', '湖滨银泰', '西湖区', '上城区', en['lang.switch']].reduce((x, d) => x.split(d).join(''), s);
  const text = strip(await page.innerText('body'));
  assert.ok(!CJK.test(text), `untranslated: ${text.match(new RegExp(CJK.source + '.{0,20}', 'g'))}`);
  // Kept across a reload (localStorage), as is the token (sessionStorage).
  await page.reload();
  await page.waitForSelector('#revenue-out[data-ready="1"]');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await close('english-operator');

  // A driver's bill in English: the explanation too.
  const drv = await open(TOKENS.driver, { lang: 'en' });
  await drv.page.waitForSelector('#bills-out[data-ready="1"]');
  await drv.page.evaluate((id) => { location.hash = '#/bills/' + encodeURIComponent(id); }, FIX.bills.owed);
  await drv.page.waitForSelector('#view-bills[data-ready="1"]');
  assert.equal(await drv.page.textContent('#reason-codes li[data-code=credit_ok]'), en['code.credit_ok']);
  const dtext = strip((await drv.page.innerText('body')).split(FIX.plates.owes).join('').split('那天我的车不在杭州').join(''));
  assert.ok(!CJK.test(dtext), `untranslated: ${dtext.match(new RegExp(CJK.source + '.{0,20}', 'g'))}`);
  await drv.close('english-driver-bill');
});

/* ---- logging in and out ---------------------------------------------------------------------- */

test('log-in by pasting a token; a bad token is refused; log-out forgets it', async () => {
  const { page, close } = await open(null, { allow: [/Failed to load resource.*401/] });
  await page.waitForSelector('#login');
  await page.fill('#token-input', 'pkt_' + '0'.repeat(64));
  await page.click('#login button[type=submit]');
  await page.waitForSelector(`#login .note.error >> text=${zh['login.invalid']}`);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('park.token')), null);
  await page.fill('#token-input', TOKENS.city);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#defaults-out[data-ready="1"]');
  assert.equal((await page.textContent('#who')).trim(), `city-clerk · ${zh['role.city']}`);
  await page.click('#logout');
  await page.waitForSelector('#login');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('park.token')), null);
  // `/` leads to the dashboard.
  await page.goto(URL0 + '/');
  assert.equal(new URL(page.url()).pathname, '/dashboard/');
  await page.waitForSelector('#login');
  await close('login');
});
