'use strict';
// Verification of Lipa's webhook deliveries: the Lipa-Signature scheme of
// the Go package github.com/lipa-gateway/lipa/webhook, byte for byte.
//
//   Lipa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
//
// keyed with the app's webhook secret. Several v1 entries may appear (one
// per secret while a secret is rotated); one match is enough. Keys other
// than t and v1 are ignored. The signature is checked first, then the
// time: a t further than the tolerance (5 minutes) from now is refused.

const crypto = require('node:crypto');

const HEADER_NAME = 'Lipa-Signature';
const DEFAULT_TOLERANCE_SECONDS = 300;
const DEFAULT_MAX_BYTES = 1 << 20;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Why a delivery failed verification (err.reason): 'missing_header',
 * 'malformed_header', 'no_match' (wrong secret, modified body, not sent by
 * Lipa), 'too_old' (signed by Lipa, but its time is out of tolerance: a
 * replay or a wrong clock) or 'too_large' (a body over the middleware's
 * maxBytes, 1 MiB by default).
 */
class WebhookVerificationError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.reason = reason;
  }
}

function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  throw new TypeError('expected the raw body as a Buffer, Uint8Array or string');
}

function parseHeader(header) {
  let t = null;
  const sigs = [];
  for (const part of header.split(',')) {
    const p = part.trim();
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const key = p.slice(0, eq);
    const value = p.slice(eq + 1);
    if (key === 't') {
      if (t !== null) throw new WebhookVerificationError('malformed_header', 'more than one t= in ' + HEADER_NAME);
      if (!/^[+-]?[0-9]+$/.test(value)) throw new WebhookVerificationError('malformed_header', 't= is not a decimal integer');
      const n = BigInt(value);
      if (n < INT64_MIN || n > INT64_MAX) throw new WebhookVerificationError('malformed_header', 't= is not a decimal integer');
      t = n;
    } else if (key === 'v1') {
      sigs.push(value);
    }
  }
  if (t === null) throw new WebhookVerificationError('malformed_header', 'no t= in ' + HEADER_NAME);
  if (sigs.length === 0) throw new WebhookVerificationError('malformed_header', 'no v1= in ' + HEADER_NAME);
  return { t, sigs };
}

/**
 * Checks that header (the Lipa-Signature value) signs rawBody with secret
 * at a time within toleranceSeconds (default 300) of now (milliseconds,
 * default Date.now()). Returns true, or throws a WebhookVerificationError.
 */
function verifySignature(header, rawBody, secret, options = {}) {
  const tolerance = options.toleranceSeconds > 0 ? options.toleranceSeconds : DEFAULT_TOLERANCE_SECONDS;
  const now = options.now !== undefined ? Number(options.now) : Date.now();
  if (typeof header !== 'string' || header.trim() === '') {
    throw new WebhookVerificationError('missing_header', 'missing ' + HEADER_NAME + ' header');
  }
  const { t, sigs } = parseHeader(header);
  const want = crypto.createHmac('sha256', toBuffer(secret))
    .update(t.toString() + '.')
    .update(toBuffer(rawBody))
    .digest();
  let matched = false;
  for (const s of sigs) {
    if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) continue;
    const got = Buffer.from(s, 'hex');
    // Compare every entry, so the time taken does not say which matched.
    if (got.length === want.length && crypto.timingSafeEqual(got, want)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError('no_match', 'no ' + HEADER_NAME + ' signature matches');
  const d = now - Number(t) * 1000;
  if (d > tolerance * 1000 || d < -tolerance * 1000) {
    throw new WebhookVerificationError('too_old', 'signature timestamp ' + t + ' is outside the tolerance');
  }
  return true;
}

/**
 * Verifies a delivery (verifySignature) and returns its event, parsed:
 * { id, type, created_at, payment }. Throws a WebhookVerificationError, or
 * a SyntaxError for a body that is not JSON.
 */
function constructEvent(rawBody, header, secret, options = {}) {
  verifySignature(header, rawBody, secret, options);
  const ev = JSON.parse(toBuffer(rawBody).toString('utf8'));
  if (!ev || typeof ev.id !== 'string' || typeof ev.type !== 'string') {
    throw new SyntaxError('the webhook body is not a Lipa event');
  }
  return ev;
}

function headerOf(req, name) {
  if (typeof req.get === 'function') return req.get(name);
  const v = req.headers && req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

function readBody(req, maxBytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new WebhookVerificationError('too_large', 'body longer than ' + maxBytes + ' bytes'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function rawBodyOf(req, maxBytes) {
  if (Buffer.isBuffer(req.body) || req.body instanceof Uint8Array) return toBuffer(req.body);
  if (typeof req.body === 'string') return Buffer.from(req.body, 'utf8');
  if (req.body !== undefined && req.body !== null && typeof req.body === 'object') {
    throw new TypeError('the request body was already parsed as JSON, so its signature cannot be checked: ' +
      "mount the webhook route before express.json(), or give it express.raw({ type: 'application/json' })");
  }
  return readBody(req, maxBytes);
}

/**
 * Middleware for Express (and plain Node http servers) that verifies each
 * delivery with secret. With onEvent(event, req), it calls it and answers
 * 204 when it resolves (unless it answered itself) and 500 when it throws,
 * so that Lipa delivers the event again later; without, it sets
 * req.lipaEvent and calls next(). A delivery that fails verification is
 * answered 400 and goes no further. The raw body is req.body when it is a
 * Buffer or string (express.raw / express.text), else it is read from the
 * request stream; a body already parsed as JSON cannot be verified (500,
 * see the message). Lipa delivers at least once: skip event ids you have
 * handled, and answer within 10 seconds.
 */
function webhookMiddleware(secret, onEvent, options = {}) {
  const maxBytes = options.maxBytes > 0 ? options.maxBytes : DEFAULT_MAX_BYTES;
  return async function lipaWebhook(req, res, next) {
    let event;
    try {
      const header = headerOf(req, HEADER_NAME);
      if (typeof header !== 'string' || header.trim() === '') {
        throw new WebhookVerificationError('missing_header', 'missing ' + HEADER_NAME + ' header');
      }
      const body = await rawBodyOf(req, maxBytes);
      event = constructEvent(body, header, secret, options);
    } catch (err) {
      const status = err instanceof TypeError ? 500 : 400;
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(status === 400 ? 'not a valid Lipa webhook delivery\n' : err.message + '\n');
      return;
    }
    if (typeof onEvent !== 'function') {
      req.lipaEvent = event;
      if (typeof next === 'function') next();
      return;
    }
    try {
      await onEvent(event, req);
      if (!res.headersSent && !res.writableEnded) {
        res.statusCode = 204;
        res.end();
      }
    } catch (err) {
      if (!res.headersSent && !res.writableEnded) {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end('try again later\n');
      }
    }
  };
}

module.exports = {
  HEADER_NAME,
  DEFAULT_TOLERANCE_SECONDS,
  WebhookVerificationError,
  verifySignature,
  constructEvent,
  webhookMiddleware,
};
