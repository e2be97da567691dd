// A few DOM helpers: elements are built with h(), never from HTML strings, so nothing the API says
// is ever parsed as markup (and the page needs no inline script or style: see the gateway's CSP).

import { t } from './i18n.js';

/**
 * h('tag.class#id', {attr: value, onclick: fn, dataset: {...}}, ...children): an element.
 * Children: nodes, strings (text), numbers, arrays of them; null, undefined and false are skipped.
 */
export function h(spec, props, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m ? m[1] : spec);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces el's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * A table: columns [{key, label, render(row) -> child, num: true}], rows; foot: an optional row
 * object rendered like the others into <tfoot>.
 */
export function table(columns, rows, opts = {}) {
  const head = h('thead', h('tr', columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label))));
  const tr = (row, i) => h('tr', { dataset: opts.rowData ? opts.rowData(row, i) : undefined },
    columns.map((c) => h('td', { class: c.num ? 'num' : null, dataset: { col: c.key } },
      c.render ? c.render(row) : row[c.key] ?? '—')));
  const body = h('tbody', rows.map(tr));
  const foot = opts.foot ? h('tfoot', tr(opts.foot, -1)) : null;
  return h('table', { class: 'grid', id: opts.id }, head, body, foot);
}

/** A status badge. */
export function badge(text, kind) {
  return h('span.badge', { class: 'badge ' + (kind || '') }, text);
}

/** A message box (kind: info, error, ok). */
export function note(text, kind = 'info') {
  return h('p', { class: 'note ' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function loading() {
  return h('p.loading', t('app.loading'));
}

/** A labelled form field around control. */
export function field(label, control, extra) {
  return h('label.field', h('span', label), control, extra);
}

/** A <select> of [value, label] pairs. */
export function select(name, options, value) {
  return h('select', { name }, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
}

/**
 * A modal dialog asking for a required reason and more fields; onSubmit(values) returns a promise
 * (rejected with an error whose message is shown in the dialog).  Resolves when closed.
 */
export function reasonDialog({ title, fields = [], submitLabel, onSubmit }) {
  return new Promise((resolve) => {
    const reason = h('textarea', { name: 'reason', required: true, maxlength: 300, rows: 3 });
    const error = h('p.note.error', { hidden: true, role: 'alert' });
    const submit = h('button.primary', { type: 'submit' }, submitLabel || t('common.submit'));
    const cancel = h('button', { type: 'button' }, t('common.cancel'));
    const form = h('form', { method: 'dialog', novalidate: true },
      h('h2', title),
      field(t('action.reason'), reason),
      fields.map((f) => field(f.label, f.control)),
      error,
      h('div.buttons', submit, cancel));
    const dlg = h('dialog.action', { id: 'action-dialog' }, form);
    const close = (result) => {
      dlg.close();
      dlg.remove();
      resolve(result);
    };
    cancel.addEventListener('click', () => close(null));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(null);
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        error.textContent = t('action.reason_required');
        error.hidden = false;
        reason.focus();
        return;
      }
      const values = { reason: text };
      for (const f of fields) values[f.name] = f.control.value;
      submit.disabled = true;
      try {
        close(await onSubmit(values));
      } catch (err) {
        error.textContent = t('action.failed', { message: err.message });
        error.hidden = false;
        submit.disabled = false;
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    reason.focus();
  });
}

/** A short message at the top of the page that goes away by itself. */
export function toast(text, kind = 'ok') {
  const el = h('div', { class: 'toast ' + kind, role: 'status' }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 6000);
}
