// Package daraja is Lipa's client for Safaricom's Daraja (M-Pesa) API: the
// OAuth token cache, M-Pesa Express (STK push and STK query), C2B URL
// registration and simulation, the initiator APIs Reversal and Transaction
// Status (with the initiator's SecurityCredential), Pull Transactions, and
// parsers for what Safaricom POSTs back (STK callbacks, C2B notifications,
// Results). It knows nothing of apps or storage; it turns Lipa-side inputs
// into Daraja's wire bodies and Daraja's answers into Go values and typed
// errors.
//
// Doc comments cite docs/daraja.md by section name (docs/daraja.md "STK
// query"): what Daraja sends and answers, each fact with its source.
//
// # Errors
//
// Every method translates failures at this boundary:
//
//   - *APIError: Daraja answered with its error envelope
//     {"requestId","errorCode","errorMessage"} (any HTTP status, including 200),
//     or with an HTTP 200 body whose ResponseCode is not zero. Reason and Class
//     classify it from one table (code and message, docs/daraja.md
//     "Errors").
//   - *AuthError: the OAuth endpoint refused the consumer key and secret
//     without an error envelope (HTTP 400/401, usually an empty body,
//     docs/daraja.md "OAuth").
//   - *BadResponseError: an answer that is neither the expected body nor the
//     error envelope (HTML page, empty body, malformed JSON).
//   - ErrUnreachable: no connection could be made, so the request provably
//     never reached Daraja and may be sent again.
//   - ErrTimeout: the request was sent but no answer came in time; Daraja may
//     have acted on it.
//
// Only ErrUnreachable proves that a request was not delivered. Any other
// failure of a push (a timeout, a broken connection, a BadResponseError with a
// 2xx status) leaves the outcome unknown: never resend an STK push
// automatically, since Daraja has no idempotency key (docs/daraja.md "M-Pesa
// Express"); resolve it with STKQuery or the callback instead.
//
// Base URL as the seam: tests and the local simulator point Config.BaseURL at
// an httptest server or at internal/darajasim; there is no interface to mock.
package daraja
