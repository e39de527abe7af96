'use strict';
// Client for Lipa's app API (GET /api/openapi.json is the contract; see
// docs/API.md). No dependencies: Node's fetch and crypto only.
//
// Requests and answers use Lipa's own JSON field names (phone_number,
// payment_id, next_cursor, …), so docs/API.md and the OpenAPI document
// describe them exactly. Amounts are JSON numbers of shillings (C2B
// payments may carry cents, such as 100.5): use toCents() before doing
// arithmetic on them.

const crypto = require('node:crypto');
const webhook = require('./webhook');

const DEFAULT_RETRIES = 2;
const DEFAULT_TIMEOUT_MS = 60000;

/**
 * An error answer from Lipa: {"error": {"code", "message", "details"}} with
 * its HTTP status. code is stable (docs/API.md lists every one): branch on
 * it, never on message.
 */
class LipaError extends Error {
  constructor(status, code, message, details, headers) {
    super(message || ('HTTP ' + status));
    this.name = 'LipaError';
    this.status = status;
    this.code = code;
    this.details = details || {};
    const ra = headers && headers.get('retry-after');
    this.retryAfter = ra && /^[0-9]+$/.test(ra) ? Number(ra) : null;
    this.requestId = (headers && headers.get('x-request-id')) || null;
  }

  /** details.payment_id: the payment recorded before the error, or null. */
  get paymentId() {
    return typeof this.details.payment_id === 'string' ? this.details.payment_id : null;
  }

  /** details.field: the request field at fault, or null. */
  get field() {
    return typeof this.details.field === 'string' ? this.details.field : null;
  }
}

/** No answer came from Lipa (network failure, timeout, abort); err.cause says why. */
class LipaConnectionError extends Error {
  constructor(message, cause) {
    super(message, { cause });
    this.name = 'LipaConnectionError';
  }
}

/** Whether err is a LipaError, with the given code when one is given. */
function isLipaError(err, code) {
  return err instanceof LipaError && (code === undefined || err.code === code);
}

/** Common error codes, for comparisons: err.code === ErrorCodes.ALREADY_CLAIMED. */
const ErrorCodes = Object.freeze({
  MISSING_API_KEY: 'missing_api_key',
  INVALID_API_KEY: 'invalid_api_key',
  APP_DISABLED: 'app_disabled',
  PAYMENT_NOT_FOUND: 'payment_not_found',
  EVENT_NOT_FOUND: 'event_not_found',
  ALREADY_CLAIMED: 'already_claimed',
  PAYMENT_NOT_SUCCESSFUL: 'payment_not_successful',
  SUBSCRIBER_BUSY: 'subscriber_busy',
  AMOUNT_MISMATCH: 'amount_mismatch',
  IDEMPOTENCY_KEY_REUSED: 'idempotency_key_reused',
  RATE_LIMITED: 'rate_limited',
  PHONE_RATE_LIMITED: 'phone_rate_limited',
  DARAJA_ERROR: 'daraja_error',
  DARAJA_UNREACHABLE: 'daraja_unreachable',
  DARAJA_TIMEOUT: 'daraja_timeout',
});

/** The event types (event.type). Ignore types you do not know: Lipa may add more. */
const EventTypes = Object.freeze({
  PAYMENT_SUCCEEDED: 'payment.succeeded',
  PAYMENT_FAILED: 'payment.failed',
  PAYMENT_CLAIMED: 'payment.claimed',
  C2B_RECEIVED: 'c2b.received',
});

/** A random Idempotency-Key: 32 hexadecimal digits (128 random bits). */
function newIdempotencyKey() {
  return crypto.randomBytes(16).toString('hex');
}

/**
 * An amount of shillings as Lipa sends it (a number with at most two
 * decimals, or a decimal string) as a whole number of cents: 100.5 → 10050.
 * Throws a RangeError for anything else.
 */
function toCents(amount) {
  const s = typeof amount === 'number' ? String(amount) : String(amount).trim();
  const m = /^(-?)([0-9]+)(?:\.([0-9]{1,2}))?$/.exec(s);
  if (!m) throw new RangeError('not an amount of shillings with at most two decimals: ' + amount);
  const cents = Number(m[2]) * 100 + Number((m[3] || '').padEnd(2, '0'));
  if (!Number.isSafeInteger(cents)) throw new RangeError('amount too large: ' + amount);
  return m[1] ? -cents : cents;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/**
 * One app's client of one Lipa. Every method returns a promise; it rejects
 * with a LipaError when Lipa answered an error, and with a
 * LipaConnectionError when no answer came.
 */
class LipaClient {
  /**
   * @param {object} options
   * @param {string} options.baseUrl    Lipa's address, e.g. "http://127.0.0.1:8000".
   * @param {string} [options.apiKey]   The app's key (lipa_…); not needed for health(), ready(), openapi().
   * @param {number} [options.retries]  Repeats after a network failure, for reads and STK pushes (default 2).
   * @param {number} [options.timeoutMs] Per attempt (default 60000).
   * @param {Function} [options.fetch]  A fetch implementation (default globalThis.fetch).
   */
  constructor(options = {}) {
    let u;
    try {
      u = new URL(options.baseUrl);
    } catch {
      u = null;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      throw new TypeError('baseUrl must be an absolute http(s) URL, got ' + JSON.stringify(options.baseUrl));
    }
    this.baseUrl = u.origin + u.pathname.replace(/\/+$/, '');
    this.apiKey = options.apiKey || '';
    this.retries = Number.isInteger(options.retries) && options.retries >= 0 ? options.retries : DEFAULT_RETRIES;
    this.timeoutMs = options.timeoutMs > 0 ? options.timeoutMs : DEFAULT_TIMEOUT_MS;
    this.fetch = options.fetch || globalThis.fetch;
    this.backoffMs = 200;
  }

  async _request(method, path, { body, headers = {}, retry = false, noKey = false, signal } = {}) {
    const h = { Accept: 'application/json', ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (!noKey && this.apiKey) h['X-API-KEY'] = this.apiKey;
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    const attempts = 1 + (retry ? this.retries : 0);
    let last;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(this.backoffMs * 2 ** (i - 1), signal);
      const timeout = AbortSignal.timeout(this.timeoutMs);
      let resp;
      let text;
      try {
        resp = await this.fetch(this.baseUrl + path, {
          method, headers: h, body: payload,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        text = await resp.text();
      } catch (err) {
        last = err;
        if (signal && signal.aborted) break;
        continue;
      }
      let json;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (resp.status >= 400) {
        const e = json && json.error;
        if (e && typeof e.code === 'string') throw new LipaError(resp.status, e.code, e.message, e.details, resp.headers);
        throw new LipaError(resp.status, '', text.slice(0, 200), {}, resp.headers);
      }
      if (json === undefined) {
        throw new Error('lipa: ' + method + ' ' + path + ': the ' + resp.status + ' answer is not JSON');
      }
      return { status: resp.status, headers: resp.headers, body: json };
    }
    throw new LipaConnectionError('lipa: ' + method + ' ' + path + ': ' + (last && last.message), last);
  }

  /**
   * Starts an STK push (POST /api/stk-push/): { phone_number, amount,
   * reference, account_reference?, description? }. Sends an
   * Idempotency-Key (options.idempotencyKey, else a random one) and repeats
   * the push with the same key when the answer is lost, so the customer is
   * never prompted twice. Resolves to Lipa's answer ({ message, payment_id,
   * status, checkout_request_id, merchant_request_id, customer_message,
   * daraja_response }) plus idempotencyKey and replayed (the stored answer
   * of an earlier push with this key). An error after the payment was
   * stored carries err.paymentId.
   */
  async stkPush(request, options = {}) {
    const key = options.idempotencyKey || newIdempotencyKey();
    const r = await this._request('POST', '/api/stk-push/', {
      body: request, headers: { 'Idempotency-Key': key }, retry: true, signal: options.signal,
    });
    return { ...r.body, idempotencyKey: key, replayed: r.headers.get('idempotent-replayed') === 'true' };
  }

  /** One payment (GET /api/payments/{id}/); another app's is payment_not_found. */
  async payment(id, options = {}) {
    const r = await this._request('GET', '/api/payments/' + encodeURIComponent(id) + '/', { retry: true, signal: options.signal });
    return r.body;
  }

  /**
   * One page of the app's payments, newest first (GET /api/payments/):
   * params { status, reference, claimed, limit, cursor }; resolves to
   * { payments, next_cursor } (null on the last page).
   */
  async listPayments(params = {}, options = {}) {
    const r = await this._request('GET', '/api/payments/' + query(params), { retry: true, signal: options.signal });
    return r.body;
  }

  /**
   * Every payment params selects, newest first, page after page
   * (params.limit per page): for await (const p of lipa.payments({ status: 'SUCCESS' })) { … }
   */
  async * payments(params = {}, options = {}) {
    let cursor = params.cursor;
    for (;;) {
      const page = await this.listPayments({ ...params, cursor }, options);
      yield * page.payments;
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /**
   * Was it paid? (GET /api/payments/verify/): params { receipt } or
   * { reference }, optionally with phone. Resolves to { paid, amount,
   * amount_expected, amount_paid, phone, receipt, reference, claimed, date,
   * payment_id, payment_type, from_intake, status, failure_reason }.
   */
  async verify(params, options = {}) {
    const r = await this._request('GET', '/api/payments/verify/' + query(params), { retry: true, signal: options.signal });
    return r.body;
  }

  /**
   * Uses a SUCCESS payment exactly once (POST /api/payments/claim/):
   * { payment_id } or { receipt } or { reference }, with amount (send it
   * whenever you know the price). Of concurrent claims of one payment one
   * resolves; the others reject with code already_claimed. A claim is never
   * sent twice.
   */
  async claim(request, options = {}) {
    const r = await this._request('POST', '/api/payments/claim/', { body: request, signal: options.signal });
    return r.body;
  }

  /**
   * One page of the events feed, oldest first (GET /api/events/): params
   * { after, limit }; resolves to { events, has_more, last_id }.
   */
  async listEvents(params = {}, options = {}) {
    const r = await this._request('GET', '/api/events/' + query(params), { retry: true, signal: options.signal });
    return r.body;
  }

  /**
   * The app's events after params.after, oldest first, page after page
   * until the feed has no more. Keep the id of the last event handled and
   * pass it as after next time.
   */
  async * events(params = {}, options = {}) {
    let after = params.after;
    for (;;) {
      const page = await this.listEvents({ ...params, after }, options);
      yield * page.events;
      if (!page.has_more || !page.last_id) return;
      after = page.last_id;
    }
  }

  /** GET /healthz: resolves while Lipa's process serves requests. No key. */
  async health(options = {}) {
    return (await this._request('GET', '/healthz', { retry: true, noKey: true, signal: options.signal })).body;
  }

  /** GET /readyz: resolves to { status: 'ready', version }; rejects with a 503 LipaError otherwise. No key. */
  async ready(options = {}) {
    return (await this._request('GET', '/readyz', { retry: true, noKey: true, signal: options.signal })).body;
  }

  /** GET /api/openapi.json: the OpenAPI 3.1 document, parsed. No key. */
  async openapi(options = {}) {
    return (await this._request('GET', '/api/openapi.json', { retry: true, noKey: true, signal: options.signal })).body;
  }
}

module.exports = {
  LipaClient,
  LipaError,
  LipaConnectionError,
  isLipaError,
  ErrorCodes,
  EventTypes,
  newIdempotencyKey,
  toCents,
  HEADER_NAME: webhook.HEADER_NAME,
  WebhookVerificationError: webhook.WebhookVerificationError,
  verifySignature: webhook.verifySignature,
  constructEvent: webhook.constructEvent,
  webhookMiddleware: webhook.webhookMiddleware,
};
