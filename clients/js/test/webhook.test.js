'use strict';
// The Lipa-Signature scheme, checked against vectors made by the Go
// package github.com/lipa-gateway/lipa/webhook (webhook.Sign).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');

const { verifySignature, constructEvent, webhookMiddleware, WebhookVerificationError } = require('..');

// webhook.Sign([]byte("whsec_example"), 2025-01-02T03:04:05Z, body) in Go.
const SECRET = 'whsec_example';
const BODY = '{"id":"evt_1","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_1","amount":100.5}}';
const T = 1735787045;
const SIG = 'ca146080d18afc774969ba374f4493456a1287a16ba905129c435d3b53254448';
const HEADER = 't=' + T + ',v1=' + SIG;
const NOW = T * 1000 + 30000;

function reason(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WebhookVerificationError, String(err));
    return err.reason;
  }
  return null;
}

test('verifySignature follows the Go package', () => {
  const cases = [
    ['Go vector', HEADER, BODY, SECRET, NOW, null],
    ['as a Buffer', HEADER, Buffer.from(BODY), Buffer.from(SECRET), NOW, null],
    ['spaces and unknown keys', ' t=' + T + ' , v0=abc, v1=' + SIG + ' ', BODY, SECRET, NOW, null],
    ['one of two v1 matches (rotation)', 't=' + T + ',v1=' + '00'.repeat(32) + ',v1=' + SIG, BODY, SECRET, NOW, null],
    ['upper-case hex', 't=' + T + ',v1=' + SIG.toUpperCase(), BODY, SECRET, NOW, null],
    ['t with a plus sign', 't=+' + T + ',v1=' + SIG, BODY, SECRET, NOW, null],
    ['an hour later', HEADER, BODY, SECRET, NOW + 3600e3, 'too_old'],
    ['from the future', HEADER, BODY, SECRET, T * 1000 - 301e3, 'too_old'],
    ['tampered body', HEADER, BODY.replace('100.5', '1000'), SECRET, NOW, 'no_match'],
    ['other secret', HEADER, BODY, 'whsec_other', NOW, 'no_match'],
    ['v1 not hex', 't=' + T + ',v1=zz', BODY, SECRET, NOW, 'no_match'],
    ['no header', '', BODY, SECRET, NOW, 'missing_header'],
    ['undefined header', undefined, BODY, SECRET, NOW, 'missing_header'],
    ['no t', 'v1=' + SIG, BODY, SECRET, NOW, 'malformed_header'],
    ['two t', 't=' + T + ',t=' + T + ',v1=' + SIG, BODY, SECRET, NOW, 'malformed_header'],
    ['t not a number', 't=soon,v1=' + SIG, BODY, SECRET, NOW, 'malformed_header'],
    ['no v1', 't=' + T, BODY, SECRET, NOW, 'malformed_header'],
  ];
  for (const [name, header, body, secret, now, want] of cases) {
    assert.equal(reason(() => verifySignature(header, body, secret, { now })), want, name);
  }
});

test('constructEvent returns the parsed event', () => {
  const ev = constructEvent(BODY, HEADER, SECRET, { now: NOW });
  assert.equal(ev.id, 'evt_1');
  assert.equal(ev.type, 'payment.succeeded');
  assert.equal(ev.payment.amount, 100.5);
});

// A request and response just like Express's (and Node's) for the
// middleware.
function fakeExchange(body, header, parsedBody) {
  const req = Readable.from(body === undefined ? [] : [Buffer.from(body)]);
  req.headers = header === undefined ? {} : { 'lipa-signature': header };
  if (parsedBody !== undefined) req.body = parsedBody;
  const res = {
    statusCode: 200, headersSent: false, writableEnded: false, body: '',
    setHeader() {},
    end(b) { this.body = b || ''; this.writableEnded = true; this.headersSent = true; },
  };
  return { req, res };
}

test('webhookMiddleware: stream, express.raw Buffer, parsed JSON, bad signature, failing handler', async () => {
  const opts = { now: NOW };
  let seen = [];
  const mw = webhookMiddleware(SECRET, (ev) => { seen.push(ev.id); }, opts);

  let x = fakeExchange(BODY, HEADER);
  await mw(x.req, x.res);
  assert.equal(x.res.statusCode, 204);
  assert.deepEqual(seen, ['evt_1']);

  x = fakeExchange(undefined, HEADER, Buffer.from(BODY)); // express.raw()
  await mw(x.req, x.res);
  assert.equal(x.res.statusCode, 204);

  x = fakeExchange(undefined, HEADER, JSON.parse(BODY)); // express.json() ran first
  await mw(x.req, x.res);
  assert.equal(x.res.statusCode, 500);
  assert.match(x.res.body, /express\.raw/);

  seen = [];
  x = fakeExchange(BODY.replace('100.5', '1000'), HEADER);
  await mw(x.req, x.res);
  assert.equal(x.res.statusCode, 400);
  assert.deepEqual(seen, []);

  const failing = webhookMiddleware(SECRET, () => { throw new Error('database down'); }, opts);
  x = fakeExchange(BODY, HEADER);
  await failing(x.req, x.res);
  assert.equal(x.res.statusCode, 500);

  // Without a handler: req.lipaEvent, then next().
  const plain = webhookMiddleware(SECRET, undefined, opts);
  x = fakeExchange(BODY, HEADER);
  let nexted = false;
  await plain(x.req, x.res, () => { nexted = true; });
  assert.ok(nexted);
  assert.equal(x.req.lipaEvent.id, 'evt_1');
});
