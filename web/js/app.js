// The dashboard's entry point: log-in with a pasted token (or a link with #token=…), who the token
// is (GET /v1/whoami), the views of its role, hash routing and the language switch.
//
//   #/revenue                 revenue chart, per-lot table, occupancy   admin, city, operator
//   #/defaults[/<plate>]      the defaults list, a plate's detail        admin, city
//
// The first view of a role's list is where its token lands.
//   #/audit                   the audit log                              admin, city, operator
//   #/bills[/<bill>]          a driver's bills, one bill                 driver

import { api, token, setToken } from './api.js';
import { h, fill, note, loading } from './dom.js';
import { t, setLanguage, language, languages, defaultLanguage } from './i18n.js';
import { revenueView } from './revenue.js';
import { defaultsView, defaultDetailView } from './defaults.js';
import { auditView } from './audit.js';
import { driverBillsView, driverBillView } from './driver.js';

const LANG_KEY = 'park.lang';
const VIEWS = {
  admin: ['revenue', 'defaults', 'audit'],
  city: ['defaults', 'revenue', 'audit'],
  operator: ['revenue', 'audit'],
  driver: ['bills'],
};
const NAV_LABEL = { revenue: 'nav.revenue', defaults: 'nav.defaults', audit: 'nav.audit', bills: 'nav.bills' };

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const langButton = document.getElementById('lang');
const logoutButton = document.getElementById('logout');

let me = null;
let leaving = [];
let generation = 0; // a view that finishes after the user moved on does not paint over the next

function applyLanguage() {
  document.documentElement.lang = language();
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  langButton.textContent = t('lang.switch');
  langButton.setAttribute('aria-label', t('lang.switch'));
}

function leave() {
  for (const fn of leaving) {
    try {
      fn();
    } catch {
      /* a chart already gone */
    }
  }
  leaving = [];
}

function showLogin(message) {
  leave();
  me = null;
  fill(nav);
  fill(who);
  logoutButton.hidden = true;
  const input = h('input', { type: 'password', name: 'token', id: 'token-input', autocomplete: 'off',
    spellcheck: 'false', required: true, size: 70 });
  const form = h('form.card.login#login',
    h('h2', t('login.title')),
    h('p', t('login.help')),
    message ? note(message, 'error') : null,
    h('label.field', h('span', t('login.token')), input),
    h('div.buttons', h('button.primary', { type: 'submit' }, t('login.submit'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (!v) return;
    setToken(v);
    start();
  });
  fill(main, form);
  main.dataset.view = 'login';
  input.focus();
}

function renderChrome() {
  const views = VIEWS[me.role] || [];
  const current = currentRoute().view;
  fill(nav, views.map((v) => h('a', { href: '#/' + v, class: v === current ? 'active' : null,
    dataset: { view: v } }, t(NAV_LABEL[v]))));
  fill(who, h('span', { title: me.scope !== '*' ? t('who.scope', { scope: me.scope }) : null },
    t('who.as', { name: me.name || me.scope, role: t('role.' + me.role) })));
  who.dataset.role = me.role;
  logoutButton.hidden = false;
}

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const view = parts[0] || '';
  const arg = parts.length > 1 ? decodeURIComponent(parts.slice(1).join('/')) : '';
  return { view, arg };
}

function ctxFor(gen) {
  return {
    me,
    onLeave: (fn) => leaving.push(fn),
    rerender: () => route(),
    error: (err, el) => showError(err, el, gen),
  };
}

function showError(err, el, gen) {
  if (gen !== undefined && gen !== generation) return;
  if (err && err.status === 401) {
    setToken(null);
    return showLogin(t('login.invalid'));
  }
  const text = err && err.status === 403 ? t('app.forbidden') : t('app.error', { message: err?.message ?? String(err) });
  fill(el || main, note(text, 'error'));
}

async function route() {
  if (!me) return;
  leave();
  const gen = ++generation;
  const views = VIEWS[me.role] || [];
  let { view, arg } = currentRoute();
  if (!views.includes(view)) {
    view = views[0];
    arg = '';
    history.replaceState(null, '', '#/' + view);
  }
  renderChrome();
  const root = h('div.view', { id: 'view-' + view });
  fill(main, root);
  main.dataset.view = view;
  const ctx = ctxFor(gen);
  try {
    if (view === 'revenue') await revenueView(root, ctx);
    else if (view === 'defaults' && arg) await defaultDetailView(root, ctx, arg);
    else if (view === 'defaults') await defaultsView(root, ctx);
    else if (view === 'audit') await auditView(root, ctx);
    else if (view === 'bills' && arg) await driverBillView(root, ctx, arg);
    else if (view === 'bills') await driverBillsView(root, ctx);
  } catch (err) {
    showError(err, root, gen);
  }
}

async function start() {
  // A link with #token=… logs in and leaves no token in the address bar or the history.
  const m = /^#token=([^&/]*)/.exec(location.hash);
  if (m) {
    setToken(decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search + '#/');
  }
  if (!token()) return showLogin();
  fill(main, h('p.loading', t('app.loading')));
  try {
    me = await api('GET', '/v1/whoami');
  } catch (err) {
    me = null;
    if (err.status === 401) {
      setToken(null);
      return showLogin(t('login.invalid'));
    }
    return showLogin(t('login.unavailable') + ' (' + err.message + ')');
  }
  document.body.dataset.role = me.role;
  await route();
}

langButton.addEventListener('click', () => {
  const next = language() === defaultLanguage ? languages.find((l) => l !== defaultLanguage) : defaultLanguage;
  setLanguage(next);
  localStorage.setItem(LANG_KEY, next);
  applyLanguage();
  if (me) route();
  else showLogin();
});

logoutButton.addEventListener('click', () => {
  setToken(null);
  delete document.body.dataset.role;
  history.replaceState(null, '', location.pathname + location.search);
  showLogin();
});

window.addEventListener('hashchange', () => {
  if (/^#token=/.test(location.hash)) start();
  else route();
});

setLanguage(localStorage.getItem(LANG_KEY) || defaultLanguage);
applyLanguage();
start();
