'use strict';
// The client against a real `lipa serve` (see lipa.js).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const {
  LipaClient, LipaError, LipaConnectionError, isLipaError, ErrorCodes, EventTypes, toCents,
  webhookMiddleware,
} = require('..');
const { startLipa, freshPhone, freshRef } = require('./lipa.js');

// The simulator's magic numbers (README, "The simulator's outcomes").
const PHONE_CANCELLED = '254700000001';
const PHONE_BUSY = '254700000007';

let lipa;
before(async () => { lipa = await startLipa(); });
after(async () => { if (lipa) await lipa.stop(); });

function newClient(options = {}) {
  const app = lipa.createApp();
  return { app, client: new LipaClient({ baseUrl: lipa.url, apiKey: app.key, ...options }) };
}

async function waitFinal(client, id) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const p = await client.payment(id);
    if (p.status !== 'PENDING') return p;
    if (Date.now() > deadline) throw new Error('payment ' + id + ' still PENDING after 15 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('got a result, want an error');
}

test('push, verify, claim once', async () => {
  const { app, client } = newClient();
  const phone = freshPhone();
  const ref = freshRef();
  const push = await client.stkPush({ phone_number: '0' + phone.slice(3), amount: 10, reference: ref, description: 'Order' });
  assert.equal(push.status, 'PENDING');
  assert.match(push.payment_id, /^pay_/);
  assert.equal(push.message, 'STK initiated');
  assert.equal(push.replayed, false);
  assert.match(push.idempotencyKey, /^[0-9a-f]{32}$/);

  const p = await waitFinal(client, push.payment_id);
  assert.equal(p.status, 'SUCCESS');
  assert.equal(p.amount, 10);
  assert.equal(p.phone_number, phone);
  assert.equal(p.app, app.name);
  assert.equal(p.reference, ref);
  assert.equal(p.claimed, false);
  assert.ok(p.mpesa_receipt_number);

  for (const q of [{ reference: ref }, { receipt: p.mpesa_receipt_number }, { reference: ref, phone }]) {
    const v = await client.verify(q);
    assert.equal(v.paid, true, JSON.stringify(q));
    assert.equal(v.payment_id, p.id);
    assert.equal(v.claimed, false);
  }
  const v = await client.verify({ reference: ref });
  assert.equal(v.amount_expected, 10);
  assert.equal(v.amount_paid, 10);

  const claim = await client.claim({ reference: ref, amount: 10 });
  assert.equal(claim.payment_id, p.id);
  assert.equal(claim.receipt, p.mpesa_receipt_number);
  assert.equal(claim.amount, 10);
  assert.ok(claim.claimed_at);

  const err = await rejection(client.claim({ payment_id: p.id }));
  assert.ok(err instanceof LipaError);
  assert.ok(isLipaError(err, ErrorCodes.ALREADY_CLAIMED));
  assert.equal(err.status, 409);
  assert.ok(err.details.claimed_at);
  assert.ok(err.message);
  assert.equal((await client.payment(p.id)).claimed, true);
});

test('idempotency keys: repeats replay, reuse with other fields is refused, keys differ', async () => {
  const { client } = newClient();
  const req = { phone_number: freshPhone(), amount: 25, reference: freshRef() };
  const first = await client.stkPush(req, { idempotencyKey: 'order-77-attempt-1' });
  const again = await client.stkPush(req, { idempotencyKey: 'order-77-attempt-1' });
  assert.equal(again.payment_id, first.payment_id);
  assert.equal(first.replayed, false);
  assert.equal(again.replayed, true);
  const err = await rejection(client.stkPush({ ...req, amount: 26 }, { idempotencyKey: 'order-77-attempt-1' }));
  assert.equal(err.code, ErrorCodes.IDEMPOTENCY_KEY_REUSED);
  assert.equal(err.status, 422);
  const a = await client.stkPush({ phone_number: freshPhone(), amount: 1, reference: freshRef() });
  const b = await client.stkPush({ phone_number: freshPhone(), amount: 1, reference: freshRef() });
  assert.notEqual(a.idempotencyKey, b.idempotencyKey);
  assert.notEqual(a.payment_id, b.payment_id);
});

// A proxy in front of Lipa that forwards everything but hangs up, without
// an answer, after Lipa answered the first request to path.
function dropFirst(path) {
  let dropped = false;
  const target = new URL(lipa.url);
  const srv = http.createServer((req, res) => {
    const drop = req.url.split('?')[0] === path && !dropped;
    if (drop) dropped = true;
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      if (drop) {
        ur.resume();
        ur.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    req.pipe(up);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

test('a push whose answer is lost is sent again with the same key; a claim is not', async () => {
  const { client: direct, app } = newClient();
  const srv = await dropFirst('/api/stk-push/');
  try {
    const client = new LipaClient({ baseUrl: 'http://127.0.0.1:' + srv.address().port, apiKey: app.key });
    const ref = freshRef();
    const push = await client.stkPush({ phone_number: freshPhone(), amount: 10, reference: ref });
    assert.equal(push.replayed, true);
    const page = await direct.listPayments({ reference: ref });
    assert.deepEqual(page.payments.map((p) => p.id), [push.payment_id]);
    await waitFinal(direct, push.payment_id);

    const srv2 = await dropFirst('/api/payments/claim/');
    try {
      const c2 = new LipaClient({ baseUrl: 'http://127.0.0.1:' + srv2.address().port, apiKey: app.key });
      const err = await rejection(c2.claim({ payment_id: push.payment_id }));
      assert.ok(err instanceof LipaConnectionError, String(err));
      assert.equal((await direct.verify({ reference: ref })).claimed, true);
    } finally {
      srv2.close();
    }
  } finally {
    srv.close();
  }
});

test('errors carry the code, status, field and details', async () => {
  const { client } = newClient();
  const cancelled = await client.stkPush({ phone_number: PHONE_CANCELLED, amount: 10, reference: freshRef() });
  const p = await waitFinal(client, cancelled.payment_id);
  assert.equal(p.status, 'FAILED');
  assert.equal(p.failure_reason, 'cancelled_by_user');
  const cases = [
    ['bad phone', () => client.stkPush({ phone_number: '12345', amount: 10, reference: freshRef() }), 400, 'invalid_phone_number', 'phone_number'],
    ['fractional amount', () => client.stkPush({ phone_number: freshPhone(), amount: 10.5, reference: freshRef() }), 400, 'invalid_amount', 'amount'],
    ['unknown field', () => client.stkPush({ phone_number: freshPhone(), amount: 10, reference: freshRef(), amout: 1 }), 400, 'unknown_field', 'amout'],
    ['busy subscriber', () => client.stkPush({ phone_number: PHONE_BUSY, amount: 10, reference: freshRef() }), 409, 'subscriber_busy', null],
    ['unknown payment', () => client.payment('pay_doesnotexist000'), 404, 'payment_not_found', null],
    ['verify nothing', () => client.verify({}), 400, 'missing_parameter', 'receipt'],
    ['claim a failed payment', () => client.claim({ payment_id: cancelled.payment_id }), 409, 'payment_not_successful', null],
    ['bad limit', () => client.listPayments({ limit: 1000 }), 400, 'invalid_limit', 'limit'],
    ['unknown event', () => client.listEvents({ after: 'evt_nosuchevent' }), 404, 'event_not_found', null],
    ['wrong key', () => new LipaClient({ baseUrl: lipa.url, apiKey: 'lipa_wrong' }).payment(cancelled.payment_id), 401, 'invalid_api_key', null],
    ['no key', () => new LipaClient({ baseUrl: lipa.url }).verify({ reference: 'X' }), 401, 'missing_api_key', null],
  ];
  for (const [name, call, status, code, field] of cases) {
    const err = await rejection(call());
    assert.ok(err instanceof LipaError, name + ': ' + err);
    assert.equal(err.status, status, name);
    assert.equal(err.code, code, name);
    assert.equal(err.field, field, name);
    assert.ok(err.message, name);
  }
});

test('payments() follows the cursor, newest first', async () => {
  const { client } = newClient();
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await client.stkPush({ phone_number: freshPhone(), amount: 10, reference: freshRef() })).payment_id);
  ids.reverse();
  const got = [];
  for await (const p of client.payments({ limit: 2 })) got.push(p.id);
  assert.deepEqual(got, ids);
  const some = [];
  for await (const p of client.payments({ limit: 2 })) {
    some.push(p.id);
    if (some.length === 3) break;
  }
  assert.deepEqual(some, ids.slice(0, 3));
});

test('events() reads the feed in order and resumes after the last id', async () => {
  const { client } = newClient();
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const push = await client.stkPush({ phone_number: freshPhone(), amount: 10, reference: freshRef() });
    await waitFinal(client, push.payment_id);
    ids.push(push.payment_id);
  }
  const got = [];
  let last;
  for await (const ev of client.events({ limit: 1 })) {
    assert.equal(ev.type, EventTypes.PAYMENT_SUCCEEDED);
    got.push(ev.payment.id);
    last = ev.id;
  }
  assert.deepEqual(got, ids);
  await client.claim({ payment_id: ids[0] });
  const fresh = [];
  for await (const ev of client.events({ after: last })) fresh.push(ev);
  assert.equal(fresh.length, 1);
  assert.equal(fresh[0].type, EventTypes.PAYMENT_CLAIMED);
  assert.equal(fresh[0].payment.id, ids[0]);
});

test("Lipa's webhook deliveries pass webhookMiddleware", async () => {
  const { client, app } = newClient();
  const events = [];
  let secret = '';
  let resolveFirst;
  const first = new Promise((r) => { resolveFirst = r; });
  const srv = http.createServer((req, res) => {
    webhookMiddleware(secret, (ev) => { events.push(ev); resolveFirst(ev); })(req, res);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const out = JSON.parse(lipa.cli('apps', 'set-webhook', app.name, 'http://127.0.0.1:' + srv.address().port + '/lipa', '--json'));
    secret = out.webhook_secret;
    const push = await client.stkPush({ phone_number: freshPhone(), amount: 10, reference: freshRef() });
    const ev = await Promise.race([first, new Promise((_, reject) => setTimeout(() => reject(new Error('no delivery within 15 s')), 15000))]);
    assert.equal(ev.type, EventTypes.PAYMENT_SUCCEEDED);
    assert.equal(ev.payment.id, push.payment_id);
    assert.match(ev.id, /^evt_/);

    const forged = JSON.stringify({ id: 'evt_forged', type: 'payment.succeeded', created_at: '2025-01-02T03:04:05Z', payment: {} });
    const r = await fetch('http://127.0.0.1:' + srv.address().port + '/lipa', {
      method: 'POST', body: forged, headers: { 'Lipa-Signature': 't=' + Math.floor(Date.now() / 1000) + ',v1=00' },
    });
    assert.equal(r.status, 400);
    assert.ok(!events.some((e) => e.id === 'evt_forged'));
  } finally {
    srv.close();
  }
});

test('health, ready and the OpenAPI document need no key', async () => {
  const client = new LipaClient({ baseUrl: lipa.url });
  assert.deepEqual(await client.health(), { status: 'ok' });
  const ready = await client.ready();
  assert.equal(ready.status, 'ready');
  assert.ok(ready.version);
  const doc = await client.openapi();
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/api/stk-push/']);
});

test('toCents reads amounts without floating-point drift', () => {
  assert.equal(toCents(100.5), 10050);
  assert.equal(toCents('10.00'), 1000);
  assert.equal(toCents(0.07), 7);
  assert.equal(toCents(250000), 25000000);
  assert.throws(() => toCents(0.1 + 0.2), RangeError);
  assert.throws(() => toCents('1e3'), RangeError);
});

test('the constructor refuses a base URL that is not http(s)', () => {
  for (const u of ['', '127.0.0.1:8000', 'ftp://lipa.example.com', undefined]) {
    assert.throws(() => new LipaClient({ baseUrl: u }), TypeError, String(u));
  }
  assert.equal(new LipaClient({ baseUrl: 'https://example.com/lipa/' }).baseUrl, 'https://example.com/lipa');
});
