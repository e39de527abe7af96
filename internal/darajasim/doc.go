// Package darajasim is a local simulator of Safaricom's Daraja (M-Pesa) API.
//
// A *Server is an http.Handler that answers at Daraja's own paths with
// Daraja's own bodies, so any Daraja client pointed at its base URL works
// unchanged, and that delivers results the way Daraja does: STK callbacks are
// POSTed to the request's CallBackURL, C2B validation and confirmation
// notifications to the URLs registered for a shortcode. The wire formats
// follow Lipa's Daraja reference (daraja-reference.md); section numbers (§)
// in this package's comments refer to it.
//
// Endpoints:
//
//	GET  /oauth/v1/generate?grant_type=client_credentials   §2   Basic auth → access token (3599 s)
//	POST /mpesa/stkpush/v1/processrequest                   §4   STK push; callback after Config.CallbackDelay (§5)
//	POST /mpesa/stkpushquery/v1/query                       §6   STK query; pending shape per Config.QueryPendingStyle
//	POST /mpesa/c2b/v1/registerurl, /mpesa/c2b/v2/registerurl  §7.1 C2B URL registration
//	POST /mpesa/c2b/v1/simulate,    /mpesa/c2b/v2/simulate     §7.6 C2B payment simulation
//
// Every refusal is Daraja's error envelope (§3)
// {"requestId","errorCode","errorMessage"} with Daraja's HTTP status, never
// plain text: an unknown path is 404 "404.001.01", a wrong verb 405
// "405.001". The only exceptions are the injected faults below that imitate
// a proxy in front of Daraja (HTML and text/plain pages).
//
// The customer's PhoneNumber on an STK push picks the outcome:
//
//	phone          outcome
//	254700000001   cancelled by user: callback ResultCode 1032 "Request cancelled by user"
//	254700000002   insufficient funds: callback ResultCode 1 "The balance is insufficient for the transaction."
//	254700000003   wrong PIN: callback ResultCode 2001 "The initiator information is invalid."
//	254700000004   customer unreachable: callback ResultCode 1037 "DS timeout user cannot be reached"
//	254700000005   no callback is ever sent; STK query reports success ("0") once the delay has passed
//	254700000006   the success callback is delivered twice
//	254700000007   push refused at once: HTTP 500 "500.001.1001" "Unable to lock subscriber, a
//	               transaction is already in process for the current subscriber"; no callback
//	254700000010   no answer: the request is held open, unprocessed, until the client gives up,
//	               Config.HangFor passes (default 2 min) or Close; then the connection is
//	               dropped without a response; no push, no callback
//	254700000011   HTTP 503 with an HTML error page (text/html); no push
//	254700000012   HTTP 500 with an HTML error page (text/html); no push
//	254700000013   HTTP 429 Too Many Requests with a short text/plain body; no push
//	254700000014   push accepted and paid (success callback, STK query) but the HTTP 200
//	               answer's JSON is truncated, as if garbled by a proxy
//	254700000015   HTTP 500 "500.003.02" "Error Occurred: Spike Arrest Violation"; no push
//	254700000016   the token expires mid-flight: the first push gets HTTP 404 "404.001.03"
//	               "Invalid Access Token" and its token is revoked; a retry with a new token pays
//	254700000017   HTTP 429 with the JSON fault of the gateway's spike-arrest policy
//	               (errorcode "policies.ratelimit.SpikeArrestViolation"); no push
//	any other      success: callback ResultCode 0 with Amount, MpesaReceiptNumber, Balance
//	               (no Value), TransactionDate and PhoneNumber metadata
//
// The scripted refusal (…07) and the faults (…10 to …17, see Fault) are
// applied after the token, field and Password checks. The same table is
// available to code as the Phone* constants, Outcomes and OutcomeFor.
//
// For tests, PushCount tells how many push requests for a phone reached the
// simulator, and RevokeTokens invalidates every token issued so far.
//
// All times on the wire (Timestamp, TransactionDate, TransTime, the dates
// inside CheckoutRequestID and receipts) are East Africa Time (UTC+3, no
// daylight saving), as Daraja sends them.
package darajasim
