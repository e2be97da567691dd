// Amounts and times as the dashboard shows them.  Amounts are integers in minor units (fen) and are
// formatted with string arithmetic only: no floating point ever touches money.  Times are shown in
// the zone the API gives them (the lot's, Asia/Shanghai); the few that the API gives as unix
// seconds are shown in Asia/Shanghai.  No DOM access: Node imports this file too.

const DECIMALS = { CNY: 2, USD: 2, EUR: 2, HKD: 2, JPY: 0, KRW: 0 };
const SYMBOLS = { CNY: '¥' };
export const ZONE = 'Asia/Shanghai';

/** The digits of an integer amount (number, bigint or decimal string), or null. */
export function minorDigits(v) {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : null;
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return v;
  return null;
}

/** Minor units as major units: money(123456) is "¥1,234.56"; money("-5") is "-¥0.05". */
export function money(minor, currency = 'CNY') {
  let s = minorDigits(minor);
  if (s === null) return '—';
  const neg = s.startsWith('-');
  if (neg) s = s.slice(1);
  s = s.replace(/^0+(?=[0-9])/, '');
  const dec = DECIMALS[currency] ?? 2;
  s = s.padStart(dec + 1, '0');
  const whole = s.slice(0, s.length - dec).replace(/\B(?=([0-9]{3})+$)/g, ',');
  const frac = dec ? '.' + s.slice(s.length - dec) : '';
  const sym = SYMBOLS[currency] ?? (currency ? currency + ' ' : '');
  return (neg && /[1-9]/.test(s) ? '-' : '') + sym + whole + frac;
}

/**
 * Major units typed by a person ("12", "12.5", "1,200.05") as minor units in a decimal string, or
 * null when it is not a non-negative amount with at most the currency's decimals.
 */
export function parseMoney(text, currency = 'CNY') {
  const dec = DECIMALS[currency] ?? 2;
  const s = String(text).trim().replace(/,/g, '');
  const m = /^([0-9]+)(?:\.([0-9]*))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[2].length > dec)) return null;
  const minor = (m[1] + (m[2] ?? '').padEnd(dec, '0')).replace(/^0+(?=[0-9])/, '');
  return minor.length > 15 ? null : minor; // stays a safe integer in JSON
}

/** Adds decimal strings of integers (either may be a number): exact at any size. */
export function addMinor(a, b) {
  const x = BigInt(minorDigits(a) ?? '0');
  const y = BigInt(minorDigits(b) ?? '0');
  return (x + y).toString();
}

/** "2026-11-27T10:05:20+08:00" as "2026-11-27 10:05:20" (the offset kept unless it is +08:00). */
export function localTime(rfc3339) {
  if (typeof rfc3339 !== 'string') return '—';
  const m = /^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$/.exec(rfc3339);
  if (!m) return rfc3339;
  return m[1] + ' ' + m[2] + (m[3] === '+08:00' ? '' : ' ' + m[3]);
}

const zoned = new Intl.DateTimeFormat('en-CA', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
  minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

function parts(date) {
  const o = {};
  for (const p of zoned.formatToParts(date)) o[p.type] = p.value;
  return o;
}

/** Unix seconds (number or string) as "YYYY-MM-DD HH:MM:SS" in Asia/Shanghai. */
export function unixTime(sec) {
  const n = typeof sec === 'string' ? Number(sec) : sec;
  if (!Number.isFinite(n)) return '—';
  const p = parts(new Date(n * 1000));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** Today's date in Asia/Shanghai, "YYYY-MM-DD". */
export function today(now = new Date()) {
  const p = parts(now);
  return `${p.year}-${p.month}-${p.day}`;
}

/** A "YYYY-MM-DD" date moved by n days (civil arithmetic, no time zone involved). */
export function addDays(date, n) {
  const [y, m, d] = date.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}

/** Days from a to b inclusive ("YYYY-MM-DD" each), or NaN. */
export function daysBetween(a, b) {
  const pa = a.split('-').map(Number), pb = b.split('-').map(Number);
  return (Date.UTC(pb[0], pb[1] - 1, pb[2]) - Date.UTC(pa[0], pa[1] - 1, pa[2])) / 86400000 + 1;
}

/** Every date from a to b inclusive. */
export function dateRange(a, b) {
  const out = [];
  for (let d = a; d <= b && out.length < 400; d = addDays(d, 1)) out.push(d);
  return out;
}

/** Whole hours and minutes of a number of seconds: {h, m}. */
export function hoursMinutes(seconds) {
  const s = Math.max(0, Math.trunc(Number(seconds) || 0));
  return { h: Math.trunc(s / 3600), m: Math.trunc((s % 3600) / 60) };
}
