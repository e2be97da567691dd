#!/usr/bin/env node
/*
 * Self-test of tests/peers/wechatpay-server.js, without the platform: it starts the server on a
 * free port with throwaway keys and plays the merchant with wechatpay-axios-plugin's own client
 * (which signs every request and verifies every answer's signature against the platform key),
 * then checks that tampered, stale and foreign requests get 401, that deductions are idempotent,
 * and that notifications arrive signed and decrypt with the library.  Exit status 0 or 1.
 *
 *   node tests/peers/wechatpay-selftest.js
 */

'use strict';

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const {
  Wechatpay, Rsa, Formatter, Aes,
} = require('wechatpay-axios-plugin');

const MCHID = '1900000109';
const MERCHANT_SERIAL = '3775B6A45ACD588826D15E583A95F5DD0E1E7B33';
const PLATFORM_SERIAL = '7132D72A03E93CDDF8C03BBD1F37EEDF0D2FBD3C';
const SERVER = path.join(__dirname, 'wechatpay-server.js');

function keyPair() {
  return crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

/* Starts the peer and resolves with {child, port} once it printed "listening N". */
function startServer(dir, files) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER,
      '--port', '0',
      '--merchant-public-key', files.merchantPub,
      '--platform-private-key', files.platformKey,
      '--platform-serial', PLATFORM_SERIAL,
      '--apiv3-key-file', files.apiv3,
      '--mchid', MCHID,
      '--merchant-serial', MERCHANT_SERIAL,
      '--state-file', path.join(dir, 'state.json'),
    ], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, WXPAY_PEER_QUIET: '1' } });
    let out = '';
    const timer = setTimeout(() => reject(new Error('the server did not start in 10 s')), 10000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening (\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
}

/* A plain HTTP exchange, for what the library's client would refuse to send. */
function raw(port, method, pathname, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method, path: pathname, headers, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function control(port, method, pathname, payload) {
  const body = payload === undefined ? '' : JSON.stringify(payload);
  return raw(port, method, pathname, { 'Content-Type': 'application/json' }, body)
    .then((r) => ({ status: r.status, data: JSON.parse(r.body) }));
}

/* Signs as the merchant with the library's primitives, for requests sent by hand. */
function authorization(privateKey, method, uri, body, { timestamp = Formatter.timestamp(), mchid = MCHID } = {}) {
  const nonce = Formatter.nonce();
  const signature = Rsa.sign(Formatter.request(method, uri, timestamp, nonce, body), privateKey);
  return Formatter.authorization(mchid, nonce, signature, timestamp, MERCHANT_SERIAL);
}

/* A notify_url receiver: records each POST; answers with the statuses queued in `answers`. */
function receiver() {
  const received = [];
  const answers = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const status = answers.length ? answers.shift() : 200;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), answered: status });
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(status === 200 ? '{"code":"SUCCESS"}' : '{"code":"FAIL","message":"try later"}');
      while (waiters.length && waiters[0].count <= received.length) waiters.shift().resolve();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      server,
      received,
      answers,
      url: (p) => `http://127.0.0.1:${server.address().port}${p}`,
      waitFor(count, ms = 5000) {
        if (received.length >= count) return Promise.resolve();
        return new Promise((ok, fail) => {
          const t = setTimeout(() => fail(new Error(`waited ${ms} ms for notification ${count}`)), ms);
          waiters.push({ count, resolve: () => { clearTimeout(t); ok(); } });
          waiters.sort((a, b) => a.count - b.count);
        });
      },
    }));
  });
}

/* Verifies a received notification as a merchant must (library only) and decrypts it. */
function openNotification(n, platformPublicKey, apiv3Key) {
  const h = n.headers;
  assert.strictEqual(h['wechatpay-serial'], PLATFORM_SERIAL);
  assert.ok(Math.abs(Formatter.timestamp() - Number(h['wechatpay-timestamp'])) <= 300);
  assert.ok(Rsa.verify(Formatter.response(h['wechatpay-timestamp'], h['wechatpay-nonce'], n.body),
    h['wechatpay-signature'], platformPublicKey), 'notification signature');
  const doc = JSON.parse(n.body);
  assert.strictEqual(doc.resource_type, 'encrypt-resource');
  assert.strictEqual(doc.resource.algorithm, 'AEAD_AES_256_GCM');
  const plain = JSON.parse(Aes.AesGcm.decrypt(doc.resource.ciphertext, apiv3Key,
    doc.resource.nonce, doc.resource.associated_data));
  return { doc, plain };
}

function parkingRequest(outParkingNo, plate, notifyUrl) {
  return {
    out_parking_no: outParkingNo,
    plate_number: plate,
    plate_color: 'BLUE',
    notify_url: notifyUrl,
    start_time: '2024-05-01T08:00:00+08:00',
    parking_name: '欢乐海岸停车场',
    free_duration: 900,
  };
}

function deductionRequest(outTradeNo, parking, notifyUrl, total = 500) {
  return {
    appid: 'wxcbda96de0b165486',
    description: '停车场扣费',
    out_trade_no: outTradeNo,
    trade_scene: 'PARKING',
    notify_url: notifyUrl,
    amount: { total, currency: 'CNY' },
    parking_info: {
      parking_id: parking.id,
      plate_number: parking.plate_number,
      plate_color: parking.plate_color,
      start_time: '2024-05-01T08:00:00+08:00',
      end_time: '2024-05-01T10:00:00+08:00',
      parking_name: '欢乐海岸停车场',
      charging_duration: 7200,
      device_id: 'exit-1',
    },
  };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxpay-selftest-'));
  const merchant = keyPair();
  const platform = keyPair();
  const apiv3Key = Formatter.nonce(32);
  const files = {
    merchantPub: path.join(dir, 'merchant_pub.pem'),
    platformKey: path.join(dir, 'platform_key.pem'),
    apiv3: path.join(dir, 'apiv3.key'),
  };
  fs.writeFileSync(files.merchantPub, merchant.publicKey);
  fs.writeFileSync(files.platformKey, platform.privateKey);
  fs.writeFileSync(files.apiv3, `${apiv3Key}\n`);

  const started = await startServer(dir, files);
  let { child } = started;
  const { port } = started;
  const notify = await receiver();
  const platformPublicKey = Rsa.from(platform.publicKey, Rsa.KEY_TYPE_PUBLIC);
  const wxpay = new Wechatpay({
    mchid: MCHID,
    serial: MERCHANT_SERIAL,
    privateKey: merchant.privateKey,
    certs: { [PLATFORM_SERIAL]: platform.publicKey },
    baseURL: `http://127.0.0.1:${port}/`,
    proxy: false,
  });
  const results = [];
  const check = async (name, fn) => {
    try {
      await fn();
      results.push([name, null]);
    } catch (e) {
      results.push([name, e]);
    }
  };

  try {
    await control(port, 'POST', '/test/config', { notify_delay_ms: 50, notify_retry_ms: [100] });

    let parking = null;
    await check('library client creates a parking; the answer verifies with the platform key', async () => {
      const { data } = await wxpay.v3.vehicle.parking.parkings.post(parkingRequest('E0001', '粤B88888', notify.url('/entry')));
      assert.strictEqual(data.state, 'NORMAL');
      assert.ok(data.id);
      parking = data;
      /* Same out_parking_no, same parameters: the same entry. */
      const again = await wxpay.v3.vehicle.parking.parkings.post(parkingRequest('E0001', '粤B88888', notify.url('/entry')));
      assert.deepStrictEqual(again.data, data);
    });

    await check('a BLOCKED plate gets state BLOCKED and its block_reason', async () => {
      await control(port, 'POST', '/test/plates', { plate_number: '粤B00001', parking_state: 'BLOCKED', block_reason: 'OVERDUE' });
      const { data } = await wxpay.v3.vehicle.parking.parkings.post(parkingRequest('E0002', '粤B00001', notify.url('/entry')));
      assert.strictEqual(data.state, 'BLOCKED');
      assert.strictEqual(data.block_reason, 'OVERDUE');
    });

    await check('the library refuses answers signed with a key other than the configured platform key', async () => {
      const impostor = new Wechatpay({
        mchid: MCHID,
        serial: MERCHANT_SERIAL,
        privateKey: merchant.privateKey,
        certs: { [PLATFORM_SERIAL]: keyPair().publicKey },
        baseURL: `http://127.0.0.1:${port}/`,
        proxy: false,
      });
      await assert.rejects(impostor.v3.vehicle.parking.parkings.post(parkingRequest('E0001', '粤B88888', notify.url('/entry'))),
        (e) => e.code === 'EV3_RES_HEADER_SIGNATURE_DIGEST');
    });

    const uri = '/v3/vehicle/parking/parkings';
    const body = JSON.stringify(parkingRequest('E0003', '粤B77777', notify.url('/entry')));
    await check('a hand-signed request is accepted and its answer verifies', async () => {
      const r = await raw(port, 'POST', uri, {
        Authorization: authorization(merchant.privateKey, 'POST', uri, body), 'Content-Type': 'application/json',
      }, body);
      assert.strictEqual(r.status, 200, r.body);
      assert.ok(Rsa.verify(Formatter.response(r.headers['wechatpay-timestamp'], r.headers['wechatpay-nonce'], r.body),
        r.headers['wechatpay-signature'], platformPublicKey));
    });

    await check('tampered body, stale timestamp, other mchid, other key, no header: 401 SIGN_ERROR', async () => {
      const tampered = body.replace('粤B77777', '粤B77778');
      const cases = [
        [authorization(merchant.privateKey, 'POST', uri, body), tampered],
        [authorization(merchant.privateKey, 'POST', uri, body, { timestamp: Formatter.timestamp() - 301 }), body],
        [authorization(merchant.privateKey, 'POST', uri, body, { mchid: '1900000110' }), body],
        [authorization(platform.privateKey, 'POST', uri, body), body],
        [authorization(merchant.privateKey, 'POST', '/v3/vehicle/transactions/parking', body), body],
        [undefined, body],
      ];
      for (const [auth, sent] of cases) {
        const headers = { 'Content-Type': 'application/json' };
        if (auth) headers.Authorization = auth;
        const r = await raw(port, 'POST', uri, headers, sent);
        assert.strictEqual(r.status, 401, r.body);
        assert.strictEqual(JSON.parse(r.body).code, 'SIGN_ERROR');
      }
    });

    let deduction = null;
    await check('deduction: ACCEPTED, then a TRANSACTION.SUCCESS notification that verifies and decrypts', async () => {
      const req = deductionRequest('T0001', parking, notify.url('/pay'));
      const { data } = await wxpay.v3.vehicle.transactions.parking.post(req);
      assert.strictEqual(data.trade_state, 'ACCEPTED');
      assert.strictEqual(data.out_trade_no, 'T0001');
      await notify.waitFor(1);
      const { doc, plain } = openNotification(notify.received[0], platformPublicKey, apiv3Key);
      assert.strictEqual(doc.event_type, 'TRANSACTION.SUCCESS');
      assert.strictEqual(doc.resource.original_type, 'transaction');
      assert.strictEqual(plain.out_trade_no, 'T0001');
      assert.strictEqual(plain.trade_state, 'SUCCESS');
      assert.strictEqual(plain.amount.total, 500);
      assert.strictEqual(plain.sp_mchid, MCHID);
      deduction = req;
    });

    await check('replay with identical parameters: same answer; other parameters: 400; one charge', async () => {
      const { data } = await wxpay.v3.vehicle.transactions.parking.post(deduction);
      assert.strictEqual(data.trade_state, 'ACCEPTED');
      assert.strictEqual(data.out_trade_no, 'T0001');
      await assert.rejects(wxpay.v3.vehicle.transactions.parking.post({ ...deduction, amount: { total: 600, currency: 'CNY' } }),
        (e) => e.response.status === 400 && e.response.data.code === 'INVALID_REQUEST');
      const { data: list } = await control(port, 'GET', '/test/deductions');
      assert.strictEqual(list.count, 1);
      assert.strictEqual(list.deductions[0].requests, 2);
      assert.strictEqual(list.deductions[0].params.amount.total, 500);
      assert.strictEqual(list.conflicts.length, 1);
    });

    await check('query by out_trade_no: SUCCESS; unknown: 404 ORDER_NOT_EXIST', async () => {
      const { data } = await wxpay.v3.vehicle.transactions['out-trade-no']['{out_trade_no}'].get({ out_trade_no: 'T0001' });
      assert.strictEqual(data.trade_state, 'SUCCESS');
      await assert.rejects(wxpay.v3.vehicle.transactions['out-trade-no']['{out_trade_no}'].get({ out_trade_no: 'T9999' }),
        (e) => e.response.status === 404 && e.response.data.code === 'ORDER_NOT_EXIST');
    });

    await check('PAY_FAIL plate: TRANSACTION.FAIL notification, retried until the receiver says 2xx', async () => {
      await control(port, 'POST', '/test/plates', { plate_number: '粤B88888', payment: 'PAY_FAIL' });
      notify.answers.push(500);
      const before = notify.received.length;
      await wxpay.v3.vehicle.transactions.parking.post(deductionRequest('T0002', parking, notify.url('/pay'), 700));
      await notify.waitFor(before + 2);
      const first = openNotification(notify.received[before], platformPublicKey, apiv3Key);
      const second = openNotification(notify.received[before + 1], platformPublicKey, apiv3Key);
      assert.strictEqual(first.doc.event_type, 'TRANSACTION.FAIL');
      assert.strictEqual(first.plain.trade_state, 'PAY_FAIL');
      assert.strictEqual(first.plain.out_trade_no, 'T0002');
      assert.strictEqual(second.doc.id, first.doc.id, 'a retry carries the same notification id');
      const { data: log } = await control(port, 'GET', '/test/notifications');
      const entry = log.find((n) => n.id === first.doc.id);
      assert.strictEqual(entry.delivered, true);
      assert.deepStrictEqual(entry.attempts.map((a) => a.status), [500, 200]);
    });

    await check('entrance state change: VEHICLE.ENTRANCE_STATE_CHANGE to the parking notify_url', async () => {
      const before = notify.received.length;
      const r = await control(port, 'POST', '/test/entrance-state-change',
        { out_parking_no: 'E0001', parking_state: 'BLOCKED', blocked_state_description: 'PAUSE' });
      assert.strictEqual(r.status, 200);
      await notify.waitFor(before + 1);
      const { doc, plain } = openNotification(notify.received[before], platformPublicKey, apiv3Key);
      assert.strictEqual(doc.event_type, 'VEHICLE.ENTRANCE_STATE_CHANGE');
      assert.strictEqual(plain.parking_id, parking.id);
      assert.strictEqual(plain.out_parking_no, 'E0001');
      assert.strictEqual(plain.parking_state, 'BLOCKED');
      assert.strictEqual(plain.blocked_state_description, 'PAUSE');
    });

    await check('faults: next request 500 SYSTEM_ERROR, then a hang that resets, then normal', async () => {
      await control(port, 'POST', '/test/faults', { mode: '500', count: 1 });
      await assert.rejects(wxpay.v3.vehicle.transactions['out-trade-no']['{out_trade_no}'].get({ out_trade_no: 'T0001' }),
        (e) => e.response.status === 500 && e.response.data.code === 'SYSTEM_ERROR');
      await control(port, 'POST', '/test/faults', { mode: 'hang', count: 1, hang_ms: 200, when: 'after' });
      await assert.rejects(wxpay.v3.vehicle.transactions.parking.post(deductionRequest('T0003', parking, notify.url('/pay'))),
        (e) => !e.response);
      /* "after": the lost answer's deduction exists; the retry is a replay, not a second charge. */
      const { data } = await wxpay.v3.vehicle.transactions.parking.post(deductionRequest('T0003', parking, notify.url('/pay')));
      assert.strictEqual(data.out_trade_no, 'T0003');
      const { data: list } = await control(port, 'GET', '/test/deductions');
      const t3 = list.deductions.filter((d) => d.out_trade_no === 'T0003');
      assert.strictEqual(t3.length, 1);
      assert.strictEqual(t3[0].requests, 2);
    });

    await check('after a restart on the same --state-file, a replay is still a replay', async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => { child.once('exit', resolve); });
      const again = await startServer(dir, files);
      child = again.child;
      const client = new Wechatpay({
        mchid: MCHID,
        serial: MERCHANT_SERIAL,
        privateKey: merchant.privateKey,
        certs: { [PLATFORM_SERIAL]: platform.publicKey },
        baseURL: `http://127.0.0.1:${again.port}/`,
        proxy: false,
      });
      const { data } = await client.v3.vehicle.transactions.parking.post(deduction);
      assert.strictEqual(data.out_trade_no, 'T0001');
      const { data: list } = await control(again.port, 'GET', '/test/deductions');
      assert.strictEqual(list.deductions.filter((d) => d.out_trade_no === 'T0001').length, 1);
      assert.strictEqual(list.count, 3);
    });
  } finally {
    child.kill('SIGTERM');
    notify.server.close();
    await sleep(50);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  let failed = 0;
  for (const [name, err] of results) {
    if (err) {
      failed += 1;
      process.stdout.write(`not ok - ${name}\n  ${String(err.stack || err).split('\n').join('\n  ')}\n`);
    } else {
      process.stdout.write(`ok - ${name}\n`);
    }
  }
  process.stdout.write(`${results.length - failed}/${results.length} passed\n`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
