// Package darajasim is a local simulator of Safaricom's Daraja (M-Pesa) API.
//
// A *Server is an http.Handler that answers at Daraja's own paths with
// Daraja's own bodies, so any Daraja client pointed at its base URL works
// unchanged, and that delivers results the way Daraja does: STK callbacks are
// POSTed to the request's CallBackURL, C2B validation and confirmation
// notifications to the URLs registered for a shortcode, Reversal and
// Transaction Status Results to the request's ResultURL. The wire formats
// follow docs/daraja.md; comments cite its sections by name.
//
// Endpoints (docs/daraja.md section in brackets):
//
//	GET  /oauth/v1/generate?grant_type=client_credentials     [OAuth] Basic auth → access token (3599 s)
//	POST /mpesa/stkpush/v1/processrequest                     [M-Pesa Express] STK push; callback after Config.CallbackDelay
//	POST /mpesa/stkpushquery/v1/query                         [STK query] pending shape per Config.QueryPendingStyle
//	POST /mpesa/c2b/v1/registerurl, /mpesa/c2b/v2/registerurl [C2B] URL registration
//	POST /mpesa/c2b/v1/simulate,    /mpesa/c2b/v2/simulate    [C2B] payment simulation
//	POST /mpesa/reversal/v1/request                           [Reversal] Result after Config.CallbackDelay
//	POST /mpesa/transactionstatus/v1/query                    [Transaction Status] Result after Config.CallbackDelay
//	POST /pulltransactions/v1/register                        [Pull Transactions] registration
//	POST /pulltransactions/v1/query                           [Pull Transactions] from the transaction log
//
// Every refusal is Daraja's error envelope ("Errors")
// {"requestId","errorCode","errorMessage"} with Daraja's HTTP status, never
// plain text: an unknown path is 404 "404.001.01", a wrong verb 405
// "405.001". The only exceptions are the injected faults below that imitate
// a proxy in front of Daraja (HTML and text/plain pages).
//
// # STK push
//
// A push is validated in Daraja's order ("M-Pesa Express"): token, a JSON
// Content-Type (else HTTP 400 "400.002.02 Bad Request - Invalid
// BusinessShortCode"), the body, each field, the Password, the shortcode,
// then the subscriber lock: while a push to a phone is open (accepted, not
// yet settled), another push to it is refused with HTTP 500 "500.001.1001"
// "Unable to lock subscriber, a transaction is already in process for the
// current subscriber" (Config.NoSubscriberLock turns this off). The
// customer's PhoneNumber picks the outcome:
//
//	phone          outcome
//	254700000001   cancelled by user: callback ResultCode 1032 "Request cancelled by user"
//	254700000002   insufficient funds: callback ResultCode 1 "The balance is insufficient for the transaction."
//	254700000003   wrong PIN: callback ResultCode 2001 "The initiator information is invalid."
//	254700000004   customer unreachable: callback ResultCode 1037 "DS timeout user cannot be reached."
//	254700000005   no callback is ever sent; STK query reports success ("0") once the delay has passed
//	254700000006   the success callback is delivered twice
//	254700000007   push refused at once: HTTP 500 "500.001.1001" "Unable to lock subscriber, a
//	               transaction is already in process for the current subscriber"; no callback
//	254700000008   nobody answers the prompt: STK query answers HTTP 200 ResultCode "4999" "The
//	               transaction is still under processing" until Config.PromptTimeout (default
//	               30 s) passes, then the push ends with callback ResultCode 1037
//	254700000009   as …08, but the pending query answer is HTTP 200 "500.001.1001" with an
//	               empty errorMessage
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
// # The transaction log
//
// The simulator keeps the transactions M-Pesa would have completed
// (Transactions, TransactionByReceipt): every paid STK push, with the
// receipt its callback carried (or would have: …05 pays without a
// callback); every C2B payment that completed, through the simulate endpoint
// or PayC2B, whether or not its confirmation was delivered; every reversal.
// Pull Transactions and Transaction Status answer from it. A C2B payment can
// complete without any validation or confirmation being sent, as when
// Lipa's endpoint was down: C2BPayment.NoConfirmation, the simulate body's
// "NoConfirmation": true (an extension Daraja does not have, used by `lipa
// simulate c2b --no-confirmation`), or the payer 254700000020
// (PhoneNoConfirmation).
//
// # Reversal and Transaction Status
//
// Both acknowledge at once and POST a Result to the ResultURL after
// Config.CallbackDelay ("Reversal", "Transaction Status"). First the
// initiator's credentials are checked (see below), then the request. A
// reversal looks the receipt up in the log, for the ReceiverParty: unknown
// gives "R000002" "The OriginalTransactionID is invalid.", reversed before
// gives "R000001" "The transaction has already been reversed.", otherwise
// the whole transaction is reversed (whatever Amount says) and logged. The
// phone that paid the original transaction scripts other outcomes:
//
//	payer          reversal outcome
//	254700000030   ResultCode "R000001" "The transaction has already been reversed."
//	254700000031   ResultCode 2001 "The initiator information is invalid."
//	254700000032   ResultCode 8006 "The security credential is locked."
//	254700000033   the reversal is made, but its Result is never sent (find it with
//	               Transaction Status by the request's OriginatorConversationID)
//	254700000034   queue timeout: nothing is reversed; a Result envelope with the simulator's
//	               own ResultCode "SimulatorQueueTimeout" goes to the QueueTimeOutURL
//	254700000035   ResultCode "R000002" "The OriginalTransactionID is invalid."
//
// These phones pay STK pushes and C2B payments like any other number. A
// status query answers from the log: the transaction with the receipt (paid
// to or from PartyA), or made by the request whose OriginatorConversationID
// is OriginalConversationID; 2032 "The transaction receipt number does not
// exist." when there is none. Its parameters take the current portal shape,
// or with Config.LegacyStatusResults the 2017 one (keys with spaces).
//
// # Initiator credentials
//
// The simulator has its own key pair ("Initiator credentials"): encrypt the
// initiator password with Certificate (daraja.Config.Certificate in
// simulator mode) and the simulator reads it back, checking it against
// Config.Initiators when set (any non-empty password otherwise) and
// answering a wrong one with 2001. A credential it cannot read (encrypted
// with Safaricom's certificate by a third-party SDK) is accepted unchecked,
// unless Config.StrictCredentials. The initiator names "invalid-initiator"
// and "locked-initiator" get 2001 and 8006 on every request. A
// SecurityCredential that is not base64 text is refused at once with
// "400.002.02 Bad Request - Invalid SecurityCredential".
//
// # Pull Transactions
//
// Registration answers "1000", then "1001" (already registered). A query
// answers the shortcode's logged C2B payments, and its STK payments unless
// Config.PullExcludesSTK ("Pull Transactions" says why they are included by
// default), completed from StartDate to EndDate (Kenya time, to the second)
// and within the last 48 hours, oldest first, OffSetValue rows skipped, at
// most Config.PullPageSize (default 100) per page, nested as Daraja nests
// them. A shortcode not registered, or a window without transactions, gets
// "1001" "No records found or Organization Name not available".
//
// For tests, PushCount tells how many push requests for a phone reached the
// simulator, RevokeTokens invalidates every token issued so far, and
// Transactions shows the log.
//
// All times on the wire (Timestamp, TransactionDate, TransTime, the dates
// inside CheckoutRequestID, ConversationID and receipts) are East Africa
// Time (UTC+3, no daylight saving), as Daraja sends them; Pull's trxDate is
// UTC with a Z, as in Safaricom's sample.
package darajasim
