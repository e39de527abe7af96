// Types of @lipa-gateway/client. Field names are Lipa's own (docs/API.md,
// GET /api/openapi.json). Amounts are numbers of shillings with at most two
// decimals (toCents converts them); times are RFC 3339 strings in UTC.


import type { IncomingMessage, ServerResponse } from 'node:http';

export type PaymentStatus = 'PENDING' | 'SUCCESS' | 'FAILED';
export type PaymentType = 'STK' | 'C2B';
export type FailureReason =
  | 'cancelled_by_user' | 'insufficient_funds' | 'wrong_pin' | 'customer_unreachable' | 'expired'
  | 'limit_exceeded' | 'rule_limited' | 'subscriber_busy' | 'prompt_failed' | 'pin_locked'
  | 'not_permitted' | 'daraja_rejected' | 'daraja_unreachable' | 'unknown_result_code';
export type ResolvedBy = 'callback' | 'query' | 'expiry' | 'push' | 'confirmation';
/** Event types; Lipa may add more: ignore those you do not know. */
export type EventType = 'payment.succeeded' | 'payment.failed' | 'payment.claimed' | 'c2b.received' | (string & {});

/** A payment as GET /api/payments/{id}/ shows it; unknown values are null. */
export interface Payment {
  id: string;
  /** The owning app's name; null for a C2B payment still in the shared intake pool. */
  app: string | null;
  payment_type: PaymentType;
  status: PaymentStatus;
  phone_number: string;
  amount: number;
  currency: 'KES';
  reference: string;
  account_reference: string;
  description: string;
  shortcode: string;
  mpesa_receipt_number: string | null;
  checkout_request_id: string | null;
  merchant_request_id: string | null;
  result_code: string | null;
  result_desc: string | null;
  failure_reason: FailureReason | null;
  resolved_by: ResolvedBy | null;
  claimed: boolean;
  claimed_at: string | null;
  transaction_date: string | null;
  created_at: string;
  updated_at: string;
}

export interface STKPushRequest {
  /** A Kenyan mobile number in any common form: "0712345678", "+254 712 345 678". */
  phone_number: string | number;
  /** Whole shillings, 1 to 250000. */
  amount: number | string;
  /** Your reference, 1 to 100 characters. */
  reference: string;
  /** What the customer sees (at most 12 characters); default: reference. */
  account_reference?: string | null;
  /** At most 100 characters; default "Payment". */
  description?: string | null;
}

export interface STKPushResult {
  message: string;
  payment_id: string;
  status: PaymentStatus;
  checkout_request_id: string;
  merchant_request_id: string;
  customer_message: string;
  daraja_response: Record<string, unknown> | null;
  /** The Idempotency-Key the push was sent with. */
  idempotencyKey: string;
  /** This is the stored answer of an earlier push with the same key (no new prompt). */
  replayed: boolean;
}

export interface ListPaymentsParams {
  status?: PaymentStatus;
  reference?: string;
  claimed?: boolean;
  /** 1 to 200 per page (default 50). */
  limit?: number;
  cursor?: string;
}

export interface PaymentPage {
  payments: Payment[];
  next_cursor: string | null;
}

export interface VerifyParams {
  receipt?: string;
  reference?: string;
  phone?: string;
}

export interface Verification {
  paid: boolean;
  amount: number;
  amount_expected: number | null;
  amount_paid: number;
  phone: string;
  receipt: string | null;
  reference: string;
  claimed: boolean;
  date: string | null;
  payment_id: string;
  payment_type: PaymentType;
  from_intake: boolean;
  status: PaymentStatus;
  failure_reason: FailureReason | null;
}

export interface ClaimRequest {
  payment_id?: string;
  receipt?: string;
  reference?: string;
  /** The shillings you expect; another amount is 422 amount_mismatch. */
  amount?: number | string;
}

export interface ClaimResult {
  message: string;
  payment_id: string;
  receipt: string | null;
  amount: number;
  claimed_at: string;
  status: PaymentStatus;
}

export interface LipaEvent {
  /** evt_…; the same on every retry and redelivery: deduplicate on it. */
  id: string;
  type: EventType;
  created_at: string;
  payment: Payment;
}

export interface ListEventsParams {
  /** The id of the last event already read. */
  after?: string;
  /** 1 to 500 per page (default 100). */
  limit?: number;
}

export interface EventPage {
  events: LipaEvent[];
  has_more: boolean;
  last_id: string | null;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** Lipa's address, e.g. "http://127.0.0.1:8000". */
  baseUrl: string;
  /** The app's key (lipa_…); not needed for health(), ready(), openapi(). */
  apiKey?: string;
  /** Repeats after a network failure, for reads and STK pushes (default 2). Answers are never repeated. */
  retries?: number;
  /** Per attempt (default 60000). */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

export class LipaClient {
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  stkPush(request: STKPushRequest, options?: CallOptions & { idempotencyKey?: string }): Promise<STKPushResult>;
  payment(id: string, options?: CallOptions): Promise<Payment>;
  listPayments(params?: ListPaymentsParams, options?: CallOptions): Promise<PaymentPage>;
  payments(params?: ListPaymentsParams, options?: CallOptions): AsyncGenerator<Payment, void, undefined>;
  verify(params: VerifyParams, options?: CallOptions): Promise<Verification>;
  claim(request: ClaimRequest, options?: CallOptions): Promise<ClaimResult>;
  listEvents(params?: ListEventsParams, options?: CallOptions): Promise<EventPage>;
  events(params?: ListEventsParams, options?: CallOptions): AsyncGenerator<LipaEvent, void, undefined>;
  health(options?: CallOptions): Promise<{ status: 'ok' }>;
  ready(options?: CallOptions): Promise<{ status: 'ready'; version: string }>;
  openapi(options?: CallOptions): Promise<Record<string, unknown>>;
}

/** An error answer from Lipa. */
export class LipaError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** Lipa's stable error code (docs/API.md); "" when the answer was not Lipa's error shape. */
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** Retry-After in seconds, or null. */
  readonly retryAfter: number | null;
  readonly requestId: string | null;
  /** details.payment_id, or null. */
  readonly paymentId: string | null;
  /** details.field, or null. */
  readonly field: string | null;
}

/** No answer came from Lipa; cause says why. */
export class LipaConnectionError extends Error {}

export function isLipaError(err: unknown, code?: string): err is LipaError;

export const ErrorCodes: Readonly<{
  MISSING_API_KEY: 'missing_api_key';
  INVALID_API_KEY: 'invalid_api_key';
  APP_DISABLED: 'app_disabled';
  PAYMENT_NOT_FOUND: 'payment_not_found';
  EVENT_NOT_FOUND: 'event_not_found';
  ALREADY_CLAIMED: 'already_claimed';
  PAYMENT_NOT_SUCCESSFUL: 'payment_not_successful';
  SUBSCRIBER_BUSY: 'subscriber_busy';
  AMOUNT_MISMATCH: 'amount_mismatch';
  IDEMPOTENCY_KEY_REUSED: 'idempotency_key_reused';
  RATE_LIMITED: 'rate_limited';
  PHONE_RATE_LIMITED: 'phone_rate_limited';
  DARAJA_ERROR: 'daraja_error';
  DARAJA_UNREACHABLE: 'daraja_unreachable';
  DARAJA_TIMEOUT: 'daraja_timeout';
}>;

export const EventTypes: Readonly<{
  PAYMENT_SUCCEEDED: 'payment.succeeded';
  PAYMENT_FAILED: 'payment.failed';
  PAYMENT_CLAIMED: 'payment.claimed';
  C2B_RECEIVED: 'c2b.received';
}>;

/** A random Idempotency-Key: 32 hexadecimal digits. */
export function newIdempotencyKey(): string;

/** Shillings as Lipa sends them (100.5) as whole cents (10050). */
export function toCents(amount: number | string): number;

/** "Lipa-Signature" */
export const HEADER_NAME: string;

export type WebhookFailure = 'missing_header' | 'malformed_header' | 'no_match' | 'too_old' | 'too_large';

export class WebhookVerificationError extends Error {
  readonly reason: WebhookFailure;
}

export interface VerifyOptions {
  /** Default 300. */
  toleranceSeconds?: number;
  /** Milliseconds since the epoch; default Date.now(). */
  now?: number;
}

/** Checks a Lipa-Signature header against the raw body; throws a WebhookVerificationError. */
export function verifySignature(header: string | undefined, rawBody: Buffer | Uint8Array | string, secret: Buffer | string, options?: VerifyOptions): true;

/** verifySignature, then the parsed event. */
export function constructEvent(rawBody: Buffer | Uint8Array | string, header: string | undefined, secret: Buffer | string, options?: VerifyOptions): LipaEvent;

/** Express (or Node http) middleware verifying each delivery; see the README. */
export function webhookMiddleware(
  secret: Buffer | string,
  onEvent?: (event: LipaEvent, req: IncomingMessage & { lipaEvent?: LipaEvent }) => unknown | Promise<unknown>,
  options?: VerifyOptions & { maxBytes?: number },
): (req: IncomingMessage & { body?: unknown; lipaEvent?: LipaEvent }, res: ServerResponse, next?: (err?: unknown) => void) => Promise<void>;
