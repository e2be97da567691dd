#!/usr/bin/env node
/*
 * A local, stateful stand-in for WeChat Pay API v3's vehicle parking service (微信支付分停车服务),
 * for tests.  The point of it: our requests are checked, and our notifications are produced, by
 * code nobody here wrote.  Every cryptographic step goes through wechatpay-axios-plugin's own
 * functions (Rsa.from, Rsa.verify, Rsa.sign, Formatter.request, Formatter.response,
 * Formatter.nonce, Formatter.timestamp, Aes.AesGcm.encrypt); this file only parses, routes and
 * keeps state.
 *
 * Usage:
 *   node tests/peers/wechatpay-server.js --port N --merchant-public-key FILE
 *     --platform-private-key FILE --platform-serial SERIAL --apiv3-key-file FILE --mchid MCHID
 *     [--state-file FILE] [--merchant-serial SERIAL] [--host 127.0.0.1] [--notify-delay-ms 200]
 * prints "listening N" on stdout once it accepts connections (--port 0 picks a free port).
 *
 * WeChat Pay API (facts: docs research payments-and-credit.md section 2):
 *   every /v3/ request needs "Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,
 *   timestamp=..,serial_no=..,signature=.." (pairs in any order) whose SHA256withRSA signature over
 *   METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n verifies with the merchant public key, for our mchid,
 *   with |now - timestamp| <= 300 s; otherwise 401 {"code":"SIGN_ERROR","message":..}.  Every
 *   answer carries Wechatpay-Timestamp/-Nonce/-Signature/-Serial, signed with the platform key
 *   over TIMESTAMP\nNONCE\nBODY\n.
 *     POST /v3/vehicle/parking/parkings              create a parking entry (out_parking_no
 *                                                    idempotent): id, state NORMAL | BLOCKED
 *                                                    (+ block_reason)
 *     GET  /v3/vehicle/parking/services/find         plate service state NORMAL|PAUSE|OUT_SERVICE
 *     POST /v3/vehicle/transactions/parking          deduction (扣费受理, out_trade_no
 *                                                    idempotent): trade_state ACCEPTED, then a
 *                                                    TRANSACTION.SUCCESS or TRANSACTION.FAIL
 *                                                    notification to notify_url
 *     GET  /v3/vehicle/transactions/out-trade-no/{n} query: SUCCESS | ACCEPTED | PAY_FAIL
 *     POST /v3/refund/domestic/refunds               refund of a paid deduction (standard v3
 *                                                    refund; out_refund_no idempotent, the sum
 *                                                    refunded never above the total): PROCESSING,
 *                                                    SUCCESS after refund_delay_ms
 *     GET  /v3/refund/domestic/refunds/{n}           the refund's state
 *   Notifications are JSON {id, create_time, event_type, resource_type, summary, resource
 *   {original_type, algorithm AEAD_AES_256_GCM, ciphertext, associated_data, nonce}}, encrypted
 *   under the APIv3 key, signed with the platform key, and re-sent until the receiver answers
 *   2xx (a bounded, configurable schedule instead of WeChat's 15 s ... 6 h).
 *
 * Test control (no authentication, plain JSON, never signed):
 *   GET  /test/health
 *   POST /test/plates {plate_number, parking_state NORMAL|BLOCKED, block_reason, service_state,
 *                      payment SUCCESS|PAY_FAIL|REJECT, reject_status, reject_code,
 *                      reject_message, bank_type, openid}           per-plate behaviour
 *   GET  /test/plates
 *   POST /test/entrance-state-change {out_parking_no | parking_id | plate_number,
 *                      parking_state, blocked_state_description}    VEHICLE.ENTRANCE_STATE_CHANGE
 *   GET  /test/parkings
 *   GET  /test/deductions[?plate_number=..]   every deduction received, with its parameters,
 *                      how often it was received, replays and conflicting re-uses
 *   POST /test/settle {out_trade_no}           settle an ACCEPTED deduction now
 *   GET  /test/notifications                   every notification and each delivery attempt
 *   GET  /test/refunds                         every refund received, how often, and conflicts
 *   POST /test/config {notify_delay_ms, notify_retry_ms [..], notify_max_attempts,
 *                      notify_timeout_ms, max_clock_offset_s, refund_delay_ms}
 *   POST /test/faults {mode "500"|"hang", count N, when "before"|"after", path_prefix, hang_ms}
 *                      the next N /v3/ requests fail: 500 SYSTEM_ERROR or no answer at all;
 *                      "after" processes the request first (the answer is lost, the effect
 *                      is not), "before" does not; hang_ms > 0 resets the connection after that
 *                      long, 0 keeps it open until the client gives up
 *   GET  /test/faults
 *   POST /test/reset                           forget everything but the keys
 */

'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { Rsa, Formatter, Aes } = require('wechatpay-axios-plugin');

const SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
const MAX_BODY = 1 << 20;
const PLATE_COLORS = ['BLUE', 'GREEN', 'YELLOW', 'BLACK', 'WHITE', 'LIMEGREEN'];
const BLOCK_REASONS = ['PAUSE', 'OVERDUE', 'OUT_SERVICE', 'EVALUATION_FAILED'];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-*]{1,32}$/;

/* ---- command line ---- */

function usage(message) {
  process.stderr.write(`wechatpay-server: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    host: '127.0.0.1',
    port: null,
    stateFile: null,
    merchantSerial: null,
    notifyDelayMs: 200,
  };
  const names = {
    '--port': 'port',
    '--host': 'host',
    '--merchant-public-key': 'merchantPublicKey',
    '--platform-private-key': 'platformPrivateKey',
    '--platform-serial': 'platformSerial',
    '--apiv3-key-file': 'apiv3KeyFile',
    '--mchid': 'mchid',
    '--state-file': 'stateFile',
    '--merchant-serial': 'merchantSerial',
    '--notify-delay-ms': 'notifyDelayMs',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const name = names[argv[i]];
    if (!name) usage(`unknown argument ${argv[i]}`);
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    opts[name] = argv[i + 1];
    i += 1;
  }
  for (const need of ['port', 'merchantPublicKey', 'platformPrivateKey', 'platformSerial',
    'apiv3KeyFile', 'mchid']) {
    if (opts[need] === null || opts[need] === undefined) usage(`missing --${need.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  }
  opts.port = Number(opts.port);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
  opts.notifyDelayMs = Number(opts.notifyDelayMs);
  if (!Number.isFinite(opts.notifyDelayMs) || opts.notifyDelayMs < 0) usage('bad --notify-delay-ms');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

/* Keys: loaded by the library (a PEM public key or certificate, a PKCS#8 or PKCS#1 private key). */
const merchantPublicKey = Rsa.from(`file://${path.resolve(opts.merchantPublicKey)}`, Rsa.KEY_TYPE_PUBLIC);
const platformPrivateKey = Rsa.from(`file://${path.resolve(opts.platformPrivateKey)}`, Rsa.KEY_TYPE_PRIVATE);
/* The APIv3 key is 32 bytes of text, set by the merchant; a trailing newline in the file is not
 * part of it. */
const apiv3Key = fs.readFileSync(opts.apiv3KeyFile).toString('latin1').replace(/\r?\n$/, '');
if (Buffer.byteLength(apiv3Key, 'latin1') !== 32) usage('the APIv3 key must be 32 bytes');
const apiv3KeyBytes = Buffer.from(apiv3Key, 'latin1');

/* ---- state ---- */

function freshState() {
  return {
    seq: 0,
    plates: {},        /* plate_number -> behaviour set by /test/plates */
    parkings: {},      /* out_parking_no -> {request, response, notify_url, ...} */
    transactions: {},  /* out_trade_no -> deduction */
    order: [],         /* out_trade_no in order of first receipt */
    conflicts: [],     /* re-uses of an out_trade_no / out_parking_no with other parameters */
    rejected: [],      /* deductions refused by test control (payment REJECT) */
    refunds: {},       /* out_refund_no -> refund */
    notifications: [], /* delivery log */
    config: {
      notify_delay_ms: opts.notifyDelayMs,
      notify_retry_ms: [200, 400, 800, 1600, 3200],
      notify_max_attempts: 6,
      notify_timeout_ms: 5000,
      refund_delay_ms: 300,
      max_clock_offset_s: 300,
    },
  };
}

let state = freshState();
const faults = { mode: null, count: 0, when: 'before', path_prefix: '/v3/', hang_ms: 0 };
const timers = new Set();
const hanging = new Set();

function loadState() {
  if (!opts.stateFile || !fs.existsSync(opts.stateFile)) return;
  const saved = JSON.parse(fs.readFileSync(opts.stateFile, 'utf8'));
  state = Object.assign(freshState(), saved);
  state.config = Object.assign(freshState().config, saved.config || {});
}

/* Written whole to a temporary file and renamed over the old one: a peer killed mid-write leaves
 * the previous state, never half of one. */
function saveState() {
  if (!opts.stateFile) return;
  const tmp = `${opts.stateFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, opts.stateFile);
}

function later(ms, fn) {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function nextId(prefix) {
  state.seq += 1;
  return `${prefix}${String(state.seq).padStart(10, '0')}${Formatter.nonce(6)}`;
}

/* WeChat writes times in RFC 3339 at +08:00. */
function rfc3339(date = new Date()) {
  const shifted = new Date(date.getTime() + 8 * 3600 * 1000);
  return `${shifted.toISOString().slice(0, 19)}+08:00`;
}

function log(message) {
  if (!process.env.WXPAY_PEER_QUIET) process.stderr.write(`wechatpay-server: ${message}\n`);
}

/* A deterministic spelling of a JSON value (object keys sorted), so that "identical parameters"
 * means identical content whatever the key order on the wire. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function plate(plateNumber) {
  if (!state.plates[plateNumber]) {
    state.plates[plateNumber] = {
      plate_number: plateNumber,
      parking_state: 'NORMAL',
      block_reason: null,
      service_state: 'NORMAL',
      payment: 'SUCCESS',
      reject_status: 403,
      reject_code: 'NO_AUTH',
      reject_message: 'deduction refused for this plate (test control)',
      bank_type: 'OTHERS',
      openid: `oTest${Formatter.nonce(23)}`,
    };
  }
  return state.plates[plateNumber];
}

/* ---- signing and answering ---- */

function signedHeaders(body) {
  const timestamp = Formatter.timestamp();
  const nonce = Formatter.nonce();
  const signature = Rsa.sign(Formatter.response(timestamp, nonce, body), platformPrivateKey);
  return {
    'Wechatpay-Timestamp': String(timestamp),
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signature,
    'Wechatpay-Serial': opts.platformSerial,
    'Wechatpay-Signature-Type': SCHEMA,
    'Request-ID': Formatter.nonce(40),
  };
}

function sendSigned(res, status, payload) {
  const body = payload === undefined ? '' : JSON.stringify(payload);
  res.writeHead(status, Object.assign(signedHeaders(body), {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  }));
  res.end(body);
}

function sendPlain(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function error(status, code, message) {
  return { status, body: { code, message } };
}

/* ---- request authentication ---- */

/*
 * Splits `WECHATPAY2-SHA256-RSA2048 k="v",k="v",...` into its pairs.  Returns null when the scheme
 * is another one, a pair is malformed or repeated.
 */
function parseAuthorization(value) {
  if (typeof value !== 'string' || !value.startsWith(`${SCHEMA} `)) return null;
  const rest = value.slice(SCHEMA.length + 1);
  const pair = /\s*([a-z_]+)="([^"]*)"\s*(,|$)/y;
  const pairs = {};
  let pos = 0;
  while (pos < rest.length) {
    pair.lastIndex = pos;
    const m = pair.exec(rest);
    if (!m || Object.prototype.hasOwnProperty.call(pairs, m[1])) return null;
    pairs[m[1]] = m[2];
    pos = pair.lastIndex;
    if (m[3] === '') break;
  }
  return pos === rest.length ? pairs : null;
}

function authenticate(req, bodyText) {
  const auth = parseAuthorization(req.headers.authorization);
  if (!auth) return 'Authorization header missing or not WECHATPAY2-SHA256-RSA2048';
  for (const k of ['mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature']) {
    if (!auth[k]) return `Authorization lacks ${k}`;
  }
  if (auth.mchid !== opts.mchid) return `mchid ${auth.mchid} is not this merchant`;
  if (opts.merchantSerial && auth.serial_no !== opts.merchantSerial) {
    return `serial_no ${auth.serial_no} is not the merchant certificate's`;
  }
  if (!/^\d{1,20}$/.test(auth.timestamp)) return 'timestamp is not a number';
  const skew = Math.abs(Formatter.timestamp() - Number(auth.timestamp));
  if (skew > state.config.max_clock_offset_s) return `timestamp is ${skew} s away from now`;
  const message = Formatter.request(req.method, req.url, auth.timestamp, auth.nonce_str, bodyText);
  let ok = false;
  try {
    ok = Rsa.verify(message, auth.signature, merchantPublicKey);
  } catch (e) {
    ok = false;
  }
  return ok ? null : 'signature does not verify with the merchant public key';
}

/* ---- validation helpers ---- */

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function requireFields(obj, spec, prefix = '') {
  for (const [name, kind] of Object.entries(spec)) {
    const v = obj[name];
    const label = `${prefix}${name}`;
    if (v === undefined || v === null) return `${label} is required`;
    if (kind === 'string' && (typeof v !== 'string' || v.length === 0)) return `${label} must be a non-empty string`;
    if (kind === 'int' && !(Number.isInteger(v) && v >= 0)) return `${label} must be a non-negative integer`;
    if (kind === 'time' && !(typeof v === 'string' && RFC3339.test(v))) return `${label} must be an RFC 3339 time`;
    if (kind === 'color' && !PLATE_COLORS.includes(v)) return `${label} must be one of ${PLATE_COLORS.join(', ')}`;
    if (kind === 'url') {
      let u = null;
      try {
        u = new URL(v);
      } catch (e) {
        u = null;
      }
      if (!u || !['http:', 'https:'].includes(u.protocol)) return `${label} must be an http(s) URL`;
    }
  }
  return null;
}

/* ---- parkings ---- */

function createParking(body) {
  const bad = requireFields(body, {
    out_parking_no: 'string',
    plate_number: 'string',
    plate_color: 'color',
    notify_url: 'url',
    start_time: 'time',
    parking_name: 'string',
    free_duration: 'int',
  });
  if (bad) return error(400, 'PARAM_ERROR', bad);
  const existing = state.parkings[body.out_parking_no];
  if (existing) {
    if (existing.canonical === canonical(body)) return { status: 200, body: existing.response };
    state.conflicts.push({ kind: 'parking', out_parking_no: body.out_parking_no, request: body, at: rfc3339() });
    saveState();
    return error(400, 'INVALID_REQUEST', `out_parking_no ${body.out_parking_no} was already used with other parameters`);
  }
  const p = plate(body.plate_number);
  const response = {
    id: nextId('PK'),
    out_parking_no: body.out_parking_no,
    plate_number: body.plate_number,
    plate_color: body.plate_color,
    start_time: body.start_time,
    parking_name: body.parking_name,
    free_duration: body.free_duration,
    state: p.parking_state,
  };
  if (p.parking_state === 'BLOCKED') response.block_reason = p.block_reason || 'OUT_SERVICE';
  state.parkings[body.out_parking_no] = {
    request: body,
    canonical: canonical(body),
    response,
    state: response.state,
    block_reason: response.block_reason || null,
    created_at: rfc3339(),
  };
  saveState();
  log(`parking ${body.out_parking_no} for ${body.plate_number}: ${response.state}`);
  return { status: 200, body: response };
}

function findService(query) {
  const bad = requireFields(Object.fromEntries(query), {
    appid: 'string', plate_number: 'string', plate_color: 'color', openid: 'string',
  });
  if (bad) return error(400, 'PARAM_ERROR', bad);
  const p = plate(query.get('plate_number'));
  const answer = {
    plate_number: query.get('plate_number'),
    plate_color: query.get('plate_color'),
    openid: query.get('openid'),
    service_state: p.service_state,
  };
  if (p.service_state !== 'OUT_SERVICE') answer.service_open_time = '2024-01-01T08:00:00+08:00';
  return { status: 200, body: answer };
}

function parkingById(id) {
  return Object.values(state.parkings).find((p) => p.response.id === id) || null;
}

/* ---- deductions ---- */

function transactionView(tx) {
  const req = tx.request;
  const view = {
    appid: req.appid,
    sp_mchid: opts.mchid,
    description: req.description,
    create_time: tx.create_time,
    out_trade_no: req.out_trade_no,
    trade_state: tx.trade_state,
    trade_state_description: {
      ACCEPTED: '已受理，等待扣款', SUCCESS: '支付成功', PAY_FAIL: '扣款失败',
    }[tx.trade_state],
    trade_scene: 'PARKING',
    parking_info: req.parking_info,
    payer: { openid: tx.openid },
    amount: { total: req.amount.total, currency: 'CNY' },
  };
  for (const k of ['sub_mchid', 'sub_appid', 'attach']) {
    if (req[k] !== undefined) view[k] = req[k];
  }
  if (tx.transaction_id) view.transaction_id = tx.transaction_id;
  if (tx.trade_state === 'SUCCESS') {
    view.success_time = tx.success_time;
    view.bank_type = tx.bank_type;
    if (tx.bank_type === 'BPA') view.user_repaid = 'N';
    view.amount.payer_total = req.amount.total;
    view.amount.discount_total = 0;
  }
  return view;
}

function validateDeduction(body) {
  const bad = requireFields(body, {
    appid: 'string', description: 'string', out_trade_no: 'string', trade_scene: 'string', notify_url: 'url',
  });
  if (bad) return bad;
  if (!OUT_TRADE_NO.test(body.out_trade_no)) return 'out_trade_no must be 1 to 32 of [0-9A-Za-z_-*]';
  if (body.trade_scene !== 'PARKING') return 'trade_scene must be PARKING';
  if (!isObject(body.amount) || !Number.isInteger(body.amount.total) || body.amount.total <= 0) {
    return 'amount.total must be a positive integer (fen)';
  }
  if (body.amount.currency !== undefined && body.amount.currency !== 'CNY') return 'amount.currency must be CNY';
  if (!isObject(body.parking_info)) return 'parking_info is required for trade_scene PARKING';
  return requireFields(body.parking_info, {
    parking_id: 'string',
    plate_number: 'string',
    plate_color: 'color',
    start_time: 'time',
    end_time: 'time',
    parking_name: 'string',
    charging_duration: 'int',
    device_id: 'string',
  }, 'parking_info.');
}

function createDeduction(body) {
  const bad = validateDeduction(body);
  if (bad) return error(400, 'PARAM_ERROR', bad);
  const existing = state.transactions[body.out_trade_no];
  if (existing) {
    if (existing.canonical === canonical(body)) {
      /* WeChat's rule (research 2.6): retry with the original parameters, one out_trade_no is
       * one payment.  The replay gets the first answer again and charges nothing more. */
      existing.requests += 1;
      saveState();
      return { status: 200, body: existing.accept_response };
    }
    state.conflicts.push({ kind: 'deduction', out_trade_no: body.out_trade_no, request: body, at: rfc3339() });
    saveState();
    return error(400, 'INVALID_REQUEST', `out_trade_no ${body.out_trade_no} was already used with other parameters`);
  }
  const parking = parkingById(body.parking_info.parking_id);
  if (!parking) return error(400, 'PARAM_ERROR', `parking_info.parking_id ${body.parking_info.parking_id} does not exist`);
  if (parking.request.plate_number !== body.parking_info.plate_number) {
    return error(400, 'PARAM_ERROR', 'parking_info.plate_number is not the plate of that parking');
  }
  const p = plate(body.parking_info.plate_number);
  if (p.payment === 'REJECT') {
    state.rejected.push({ out_trade_no: body.out_trade_no, request: body, at: rfc3339() });
    saveState();
    return error(p.reject_status, p.reject_code, p.reject_message);
  }
  const tx = {
    request: body,
    canonical: canonical(body),
    create_time: rfc3339(),
    trade_state: 'ACCEPTED',
    transaction_id: null,
    success_time: null,
    bank_type: null,
    openid: p.openid,
    requests: 1,
    received_at: rfc3339(),
    notification_id: null,
    notified: false,
  };
  tx.accept_response = transactionView(tx);
  state.transactions[body.out_trade_no] = tx;
  state.order.push(body.out_trade_no);
  saveState();
  log(`deduction ${body.out_trade_no} of ${body.amount.total} fen for ${body.parking_info.plate_number}: ACCEPTED`);
  later(state.config.notify_delay_ms, () => settle(body.out_trade_no));
  return { status: 200, body: tx.accept_response };
}

/* The final result is decided when the deduction settles, by the plate's behaviour at that
 * moment: a test may change it between acceptance and settlement. */
function settle(outTradeNo) {
  const tx = state.transactions[outTradeNo];
  if (!tx || tx.trade_state !== 'ACCEPTED') return false;
  const p = plate(tx.request.parking_info.plate_number);
  tx.trade_state = p.payment === 'PAY_FAIL' ? 'PAY_FAIL' : 'SUCCESS';
  tx.transaction_id = `4200${Date.now()}${String(state.seq += 1).padStart(6, '0')}`;
  if (tx.trade_state === 'SUCCESS') {
    tx.success_time = rfc3339();
    tx.bank_type = p.bank_type;
  }
  tx.notification_id = `EV-${nextId('')}`;
  saveState();
  log(`deduction ${outTradeNo}: ${tx.trade_state}`);
  notifyTransaction(tx);
  return true;
}

function notifyTransaction(tx) {
  const success = tx.trade_state === 'SUCCESS';
  const entry = notification({
    id: tx.notification_id,
    url: tx.request.notify_url,
    event_type: success ? 'TRANSACTION.SUCCESS' : 'TRANSACTION.FAIL',
    summary: success ? '支付成功' : '支付失败',
    original_type: 'transaction',
    associated_data: 'transaction',
    resource: transactionView(tx),
    subject: { out_trade_no: tx.request.out_trade_no },
    onDelivered: () => {
      tx.notified = true;
      saveState();
    },
  });
  deliver(entry);
}

function queryDeduction(outTradeNo) {
  const tx = state.transactions[outTradeNo];
  if (!tx) return error(404, 'ORDER_NOT_EXIST', `no order with out_trade_no ${outTradeNo}`);
  return { status: 200, body: transactionView(tx) };
}

/* ---- refunds ---- */

const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

function refundView(rf) {
  const req = rf.request;
  const view = {
    refund_id: rf.refund_id,
    out_refund_no: req.out_refund_no,
    transaction_id: rf.transaction_id,
    out_trade_no: rf.out_trade_no,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    create_time: rf.create_time,
    status: rf.status,
    funds_account: 'AVAILABLE',
    amount: {
      total: req.amount.total, refund: req.amount.refund, payer_total: req.amount.total,
      payer_refund: req.amount.refund, settlement_total: req.amount.total,
      settlement_refund: req.amount.refund, discount_refund: 0, currency: 'CNY',
    },
  };
  if (rf.success_time) view.success_time = rf.success_time;
  return view;
}

function createRefund(body) {
  if (!isObject(body)) return error(400, 'PARAM_ERROR', 'the body must be a JSON object');
  const bad = requireFields(body, { out_refund_no: 'string' });
  if (bad) return error(400, 'PARAM_ERROR', bad);
  if (!OUT_REFUND_NO.test(body.out_refund_no)) {
    return error(400, 'PARAM_ERROR', 'out_refund_no must be 1 to 64 of [0-9A-Za-z_-|*@]');
  }
  const a = body.amount;
  if (!isObject(a) || !Number.isInteger(a.refund) || a.refund <= 0 || !Number.isInteger(a.total) ||
      a.total <= 0 || a.currency !== 'CNY') {
    return error(400, 'PARAM_ERROR', 'amount must be {refund, total: positive integers (fen), currency: CNY}');
  }
  const existing = state.refunds[body.out_refund_no];
  if (existing) {
    if (existing.canonical === canonical(body)) {
      /* One out_refund_no is one refund: a repeat is answered with its state, never paid twice. */
      existing.requests += 1;
      saveState();
      return { status: 200, body: refundView(existing) };
    }
    state.conflicts.push({ kind: 'refund', out_refund_no: body.out_refund_no, request: body, at: rfc3339() });
    saveState();
    return error(400, 'INVALID_REQUEST', `out_refund_no ${body.out_refund_no} was already used with other parameters`);
  }
  let tx = null;
  if (typeof body.transaction_id === 'string') {
    tx = Object.values(state.transactions).find((t) => t.transaction_id === body.transaction_id);
  } else if (typeof body.out_trade_no === 'string') {
    tx = state.transactions[body.out_trade_no];
  } else {
    return error(400, 'PARAM_ERROR', 'transaction_id or out_trade_no is required');
  }
  if (!tx) return error(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
  if (tx.trade_state !== 'SUCCESS' && tx.trade_state !== 'REFUND') {
    return error(400, 'INVALID_REQUEST', `the order is ${tx.trade_state}, not paid`);
  }
  if (a.total !== tx.request.amount.total) {
    return error(400, 'PARAM_ERROR', `amount.total ${a.total} is not the order's total ${tx.request.amount.total}`);
  }
  const already = Object.values(state.refunds)
    .filter((r) => r.out_trade_no === tx.request.out_trade_no && r.status !== 'CLOSED' && r.status !== 'ABNORMAL')
    .reduce((sum, r) => sum + r.request.amount.refund, 0);
  if (already + a.refund > a.total) {
    return error(400, 'INVALID_REQUEST', `refunds would reach ${already + a.refund} of ${a.total}: 可退金额不足`);
  }
  const rf = {
    request: body,
    canonical: canonical(body),
    refund_id: `5030${Date.now()}${String(state.seq += 1).padStart(6, '0')}`,
    transaction_id: tx.transaction_id,
    out_trade_no: tx.request.out_trade_no,
    create_time: rfc3339(),
    success_time: null,
    status: 'PROCESSING',
    requests: 1,
  };
  state.refunds[body.out_refund_no] = rf;
  saveState();
  log(`refund ${body.out_refund_no} of ${a.refund} of ${a.total} fen (${tx.request.out_trade_no}): PROCESSING`);
  later(state.config.refund_delay_ms, () => {
    rf.status = 'SUCCESS';
    rf.success_time = rfc3339();
    tx.trade_state = 'REFUND';
    saveState();
    log(`refund ${body.out_refund_no}: SUCCESS`);
  });
  return { status: 200, body: refundView(rf) };
}

function queryRefund(outRefundNo) {
  const rf = state.refunds[outRefundNo];
  if (!rf) return error(404, 'RESOURCE_NOT_EXISTS', `no refund with out_refund_no ${outRefundNo}`);
  return { status: 200, body: refundView(rf) };
}

/* ---- notifications ---- */

/*
 * Builds one notification.  Its body is fixed once (same id, same ciphertext on every retry, as a
 * receiver deduplicating by id expects); each attempt is signed afresh, since a retry minutes
 * later must still pass the receiver's 300-second window.
 */
function notification(spec) {
  const nonce = Formatter.nonce(12);
  const plaintext = JSON.stringify(spec.resource);
  const body = JSON.stringify({
    id: spec.id,
    create_time: rfc3339(),
    resource_type: 'encrypt-resource',
    event_type: spec.event_type,
    summary: spec.summary,
    resource: {
      original_type: spec.original_type,
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: Aes.AesGcm.encrypt(plaintext, apiv3KeyBytes, nonce, spec.associated_data),
      associated_data: spec.associated_data,
      nonce,
    },
  });
  const entry = {
    id: spec.id,
    event_type: spec.event_type,
    url: spec.url,
    subject: spec.subject,
    plaintext: spec.resource,
    attempts: [],
    delivered: false,
    gave_up: false,
  };
  state.notifications.push(entry);
  Object.defineProperty(entry, 'body', { value: body, enumerable: false });
  Object.defineProperty(entry, 'onDelivered', { value: spec.onDelivered || (() => {}), enumerable: false });
  return entry;
}

function deliver(entry) {
  const url = new URL(entry.url);
  const client = url.protocol === 'https:' ? https : http;
  const started = Date.now();
  let done = false;
  const finish = (status, err) => {
    if (done) return;
    done = true;
    entry.attempts.push({ at: rfc3339(), status: status || null, error: err || null, ms: Date.now() - started });
    if (status >= 200 && status < 300) {
      entry.delivered = true;
      log(`notification ${entry.id} (${entry.event_type}) delivered to ${entry.url}`);
      entry.onDelivered();
      return;
    }
    const n = entry.attempts.length;
    if (n >= state.config.notify_max_attempts) {
      entry.gave_up = true;
      log(`notification ${entry.id}: giving up after ${n} attempts`);
      return;
    }
    const schedule = state.config.notify_retry_ms;
    later(schedule[Math.min(n - 1, schedule.length - 1)], () => deliver(entry));
  };
  const req = client.request(url, {
    method: 'POST',
    agent: false,
    rejectUnauthorized: false,
    headers: Object.assign(signedHeaders(entry.body), {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(entry.body),
      'User-Agent': 'Mozilla/4.0',
      Connection: 'close',
    }),
  }, (res) => {
    res.resume();
    res.on('end', () => finish(res.statusCode, null));
    res.on('error', (e) => finish(null, e.message));
  });
  req.setTimeout(state.config.notify_timeout_ms, () => {
    req.destroy(new Error('timed out'));
  });
  req.on('error', (e) => finish(null, e.message));
  req.end(entry.body);
}

/* ---- test control ---- */

function setPlate(body) {
  if (!isObject(body) || typeof body.plate_number !== 'string' || !body.plate_number) {
    return { status: 400, body: { error: 'plate_number is required' } };
  }
  const p = plate(body.plate_number);
  const enums = {
    parking_state: ['NORMAL', 'BLOCKED'],
    block_reason: BLOCK_REASONS,
    service_state: ['NORMAL', 'PAUSE', 'OUT_SERVICE'],
    payment: ['SUCCESS', 'PAY_FAIL', 'REJECT'],
  };
  for (const [k, allowed] of Object.entries(enums)) {
    if (body[k] !== undefined && !allowed.includes(body[k])) {
      return { status: 400, body: { error: `${k} must be one of ${allowed.join(', ')}` } };
    }
  }
  for (const k of ['parking_state', 'block_reason', 'service_state', 'payment', 'reject_status',
    'reject_code', 'reject_message', 'bank_type', 'openid']) {
    if (body[k] !== undefined) p[k] = body[k];
  }
  saveState();
  return { status: 200, body: p };
}

function entranceStateChange(body) {
  if (!isObject(body) || !['NORMAL', 'BLOCKED'].includes(body.parking_state)) {
    return { status: 400, body: { error: 'parking_state NORMAL or BLOCKED is required' } };
  }
  let parking = null;
  if (body.out_parking_no) parking = state.parkings[body.out_parking_no] || null;
  else if (body.parking_id) parking = parkingById(body.parking_id);
  else if (body.plate_number) {
    parking = Object.values(state.parkings).filter((p) => p.request.plate_number === body.plate_number).pop() || null;
  }
  if (!parking) return { status: 404, body: { error: 'no such parking' } };
  parking.state = body.parking_state;
  parking.block_reason = body.parking_state === 'BLOCKED' ? (body.blocked_state_description || 'PAUSE') : null;
  const req = parking.request;
  const resource = {
    sp_mchid: opts.mchid,
    parking_id: parking.response.id,
    out_parking_no: req.out_parking_no,
    plate_number: req.plate_number,
    plate_color: req.plate_color,
    start_time: req.start_time,
    parking_name: req.parking_name,
    free_duration: req.free_duration,
    parking_state: parking.state,
    state_update_time: rfc3339(),
  };
  if (req.sub_mchid !== undefined) resource.sub_mchid = req.sub_mchid;
  if (parking.block_reason) resource.blocked_state_description = parking.block_reason;
  const entry = notification({
    id: `EV-${nextId('')}`,
    url: req.notify_url,
    event_type: 'VEHICLE.ENTRANCE_STATE_CHANGE',
    summary: '停车入场状态通知',
    original_type: 'parking',
    /* WeChat's sample of this notification carries an empty associated_data. */
    associated_data: '',
    resource,
    subject: { out_parking_no: req.out_parking_no },
  });
  saveState();
  deliver(entry);
  return { status: 200, body: { notification_id: entry.id, resource } };
}

function listDeductions(query) {
  const only = query.get('plate_number');
  const deductions = state.order.map((no) => state.transactions[no])
    .filter((tx) => !only || tx.request.parking_info.plate_number === only)
    .map((tx) => ({
      out_trade_no: tx.request.out_trade_no,
      plate_number: tx.request.parking_info.plate_number,
      parking_id: tx.request.parking_info.parking_id,
      amount_total: tx.request.amount.total,
      trade_state: tx.trade_state,
      requests: tx.requests,
      received_at: tx.received_at,
      notified: tx.notified,
      params: tx.request,
    }));
  return {
    status: 200,
    body: {
      count: deductions.length,
      deductions,
      conflicts: state.conflicts.filter((c) => c.kind === 'deduction'),
      rejected: state.rejected,
    },
  };
}

function setConfig(body) {
  if (!isObject(body)) return { status: 400, body: { error: 'a JSON object is required' } };
  const c = state.config;
  const nonNegative = (v) => Number.isFinite(v) && v >= 0;
  if (body.notify_delay_ms !== undefined) {
    if (!nonNegative(body.notify_delay_ms)) return { status: 400, body: { error: 'notify_delay_ms' } };
    c.notify_delay_ms = body.notify_delay_ms;
  }
  if (body.notify_retry_ms !== undefined) {
    if (!Array.isArray(body.notify_retry_ms) || body.notify_retry_ms.length === 0
      || !body.notify_retry_ms.every(nonNegative)) return { status: 400, body: { error: 'notify_retry_ms' } };
    c.notify_retry_ms = body.notify_retry_ms;
  }
  if (body.refund_delay_ms !== undefined) {
    if (!nonNegative(body.refund_delay_ms)) return { status: 400, body: { error: 'refund_delay_ms' } };
    c.refund_delay_ms = body.refund_delay_ms;
  }
  for (const k of ['notify_max_attempts', 'notify_timeout_ms', 'max_clock_offset_s']) {
    if (body[k] !== undefined) {
      if (!Number.isInteger(body[k]) || body[k] < 1) return { status: 400, body: { error: k } };
      c[k] = body[k];
    }
  }
  saveState();
  return { status: 200, body: c };
}

function setFaults(body) {
  if (!isObject(body) || !['500', 'hang', null].includes(body.mode === undefined ? null : String(body.mode))) {
    return { status: 400, body: { error: 'mode must be "500" or "hang"' } };
  }
  const count = body.count === undefined ? 1 : body.count;
  if (!Number.isInteger(count) || count < 0) return { status: 400, body: { error: 'count' } };
  if (body.when !== undefined && !['before', 'after'].includes(body.when)) {
    return { status: 400, body: { error: 'when must be "before" or "after"' } };
  }
  faults.mode = body.mode === undefined ? null : String(body.mode);
  faults.count = faults.mode ? count : 0;
  faults.when = body.when || 'before';
  faults.path_prefix = body.path_prefix || '/v3/';
  faults.hang_ms = Number.isInteger(body.hang_ms) && body.hang_ms > 0 ? body.hang_ms : 0;
  return { status: 200, body: faults };
}

function control(req, url, body) {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /test/health': return { status: 200, body: { ok: true, mchid: opts.mchid } };
    case 'POST /test/plates': return setPlate(body);
    case 'GET /test/plates': return { status: 200, body: state.plates };
    case 'POST /test/entrance-state-change': return entranceStateChange(body);
    case 'GET /test/parkings': return { status: 200, body: Object.values(state.parkings) };
    case 'GET /test/deductions': return listDeductions(url.searchParams);
    case 'POST /test/settle': {
      const ok = isObject(body) && settle(body.out_trade_no);
      return ok ? { status: 200, body: { settled: body.out_trade_no } }
        : { status: 409, body: { error: 'no ACCEPTED deduction with that out_trade_no' } };
    }
    case 'GET /test/notifications': return { status: 200, body: state.notifications };
    case 'GET /test/refunds': {
      const refunds = Object.values(state.refunds).map((r) => ({ ...refundView(r), requests: r.requests, request: r.request }));
      return { status: 200, body: { refunds, conflicts: state.conflicts.filter((c) => c.kind === 'refund') } };
    }
    case 'POST /test/config': return setConfig(body);
    case 'GET /test/config': return { status: 200, body: state.config };
    case 'POST /test/faults': return setFaults(body);
    case 'GET /test/faults': return { status: 200, body: faults };
    case 'POST /test/reset': {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      state = freshState();
      setFaults({});
      saveState();
      return { status: 200, body: { reset: true } };
    }
    default: return { status: 404, body: { error: `no control endpoint ${route}` } };
  }
}

/* ---- the API ---- */

function api(req, url, body) {
  const route = `${req.method} ${url.pathname}`;
  if (route === 'POST /v3/vehicle/parking/parkings') return createParking(body);
  if (route === 'GET /v3/vehicle/parking/services/find') return findService(url.searchParams);
  if (route === 'POST /v3/vehicle/transactions/parking') return createDeduction(body);
  const m = /^GET \/v3\/vehicle\/transactions\/out-trade-no\/([^/]+)$/.exec(route);
  if (m) return queryDeduction(decodeURIComponent(m[1]));
  if (route === 'POST /v3/refund/domestic/refunds') return createRefund(body);
  const r = /^GET \/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(route);
  if (r) return queryRefund(decodeURIComponent(r[1]));
  return error(404, 'NOT_FOUND', `no API ${route}`);
}

function injectFault(res, fault) {
  if (fault.mode === '500') {
    sendSigned(res, 500, { code: 'SYSTEM_ERROR', message: '系统错误 (injected by test control)' });
    return;
  }
  const socket = res.socket;
  hanging.add(socket);
  socket.on('close', () => hanging.delete(socket));
  if (fault.hang_ms > 0) later(fault.hang_ms, () => socket.destroy());
}

function handle(req, res, raw) {
  const url = new URL(req.url, 'http://peer.invalid');
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (e) {
    text = null;
  }
  const parseBody = () => {
    if (req.method === 'GET' || raw.length === 0) return {};
    try {
      return JSON.parse(text);
    } catch (e) {
      return undefined;
    }
  };

  if (url.pathname.startsWith('/test/')) {
    const body = parseBody();
    const out = body === undefined ? { status: 400, body: { error: 'body is not JSON' } } : control(req, url, body);
    sendPlain(res, out.status, out.body);
    return;
  }

  let fault = null;
  if (faults.mode && faults.count > 0 && url.pathname.startsWith(faults.path_prefix)) {
    faults.count -= 1;
    fault = { mode: faults.mode, when: faults.when, hang_ms: faults.hang_ms };
    log(`fault ${fault.mode} (${fault.when}) on ${req.method} ${req.url}`);
  }
  if (fault && fault.when === 'before') {
    injectFault(res, fault);
    return;
  }

  let out;
  if (text === null) {
    out = error(400, 'PARAM_ERROR', 'the request body is not UTF-8');
  } else {
    const why = authenticate(req, text);
    if (why) {
      log(`401 ${req.method} ${req.url}: ${why}`);
      out = error(401, 'SIGN_ERROR', why);
    } else {
      const body = parseBody();
      out = body === undefined || (req.method !== 'GET' && !isObject(body))
        ? error(400, 'PARAM_ERROR', 'the request body is not a JSON object')
        : api(req, url, body);
    }
  }
  if (fault) {
    injectFault(res, fault);
    return;
  }
  sendSigned(res, out.status, out.body);
}

/* ---- server ---- */

loadState();

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) tooBig = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooBig) {
      sendSigned(res, 413, { code: 'PARAM_ERROR', message: 'request body too large' });
      return;
    }
    try {
      handle(req, res, Buffer.concat(chunks));
    } catch (e) {
      log(`internal error: ${e.stack}`);
      if (!res.headersSent) sendSigned(res, 500, { code: 'SYSTEM_ERROR', message: String(e.message) });
    }
  });
});

/* Deductions accepted before a restart still settle and notify, as WeChat's would. */
for (const [no, tx] of Object.entries(state.transactions)) {
  if (tx.trade_state === 'ACCEPTED') later(state.config.notify_delay_ms, () => settle(no));
  else if (!tx.notified && tx.notification_id) notifyTransaction(tx);
}

function shutdown() {
  for (const t of timers) clearTimeout(t);
  for (const s of hanging) s.destroy();
  server.close();
  server.closeAllConnections();
  saveState();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(opts.port, opts.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
