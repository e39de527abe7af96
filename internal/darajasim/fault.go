package darajasim

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// Fault is a failure the simulator injects into the STK push request itself,
// rather than into the payment's result: Daraja, or something in front of it,
// not answering, answering garbage, throttling, or refusing a token that was
// valid a moment ago. A fault is picked by the push's PhoneNumber (see the
// package comment and Outcomes) and applied at the same point as the
// subscriber-lock refusal: after the token, field and Password checks, so a
// push with an invalid field or wrong credentials is refused as usual.
type Fault string

const (
	// FaultNone: the push request is answered normally.
	FaultNone Fault = ""

	// FaultNoAnswer: the request is held open without being processed (no
	// push is recorded, no callback is ever sent) until the client gives
	// up (the request's context ends), Config.HangFor passes, or Close is
	// called; then the connection is dropped without any response, as
	// when Daraja accepts the connection but never answers
	// (docs/daraja.md "M-Pesa Express").
	FaultNoAnswer Fault = "no-answer"

	// FaultUnavailable: HTTP 503 with an HTML error page (Content-Type
	// text/html), as a load balancer in front of Daraja serves it; no push
	// is recorded.
	FaultUnavailable Fault = "http-503-html"

	// FaultServerError: HTTP 500 with an HTML error page (Content-Type
	// text/html) instead of Daraja's JSON envelope; no push is recorded.
	FaultServerError Fault = "http-500-html"

	// FaultTooManyRequests: HTTP 429 with a short text/plain body; no
	// push is recorded. Daraja itself throttles with FaultSpikeArrest's
	// answer (docs/daraja.md "Errors"); a 429 comes from a proxy in
	// between.
	FaultTooManyRequests Fault = "http-429"

	// FaultMalformedAnswer: the push IS accepted, recorded and settled like
	// a success (callback after Config.CallbackDelay, STK query answers), but
	// the HTTP 200 answer's body is the acceptance JSON cut off inside
	// ResponseDescription, as when a proxy garbles Daraja's answer: it does
	// not decode, though the MerchantRequestID and CheckoutRequestID are
	// still readable in its text. Content-Length matches the cut body.
	FaultMalformedAnswer Fault = "malformed-answer"

	// FaultSpikeArrest: HTTP 500 "500.003.02" MessageSpikeArrest,
	// Daraja's rate-limit refusal (docs/daraja.md "Errors", "M-Pesa
	// Express"); no push is recorded.
	FaultSpikeArrest Fault = "spike-arrest"

	// FaultGatewaySpikeArrest: HTTP 429 with the JSON fault body of Apigee's
	// SpikeArrest policy, the gateway in front of Daraja, refusing the
	// request for its rate before Daraja sees it ({"fault": {"faultstring":
	// "Spike arrest violation. ...", "detail": {"errorcode":
	// "policies.ratelimit.SpikeArrestViolation"}}}, as Apigee's policy error
	// reference gives it); no push is recorded.
	FaultGatewaySpikeArrest Fault = "http-429-spike-arrest"

	// FaultTokenExpired: the first push request for the phone that
	// reaches this point on a Server is refused with HTTP 404 "404.001.03
	// Invalid Access Token" and the bearer token it carried is revoked,
	// as when a token expires mid-flight (docs/daraja.md "OAuth"); no
	// push is recorded. Later pushes for the phone (which need a token
	// issued afterwards, or another one still valid) are accepted and
	// pay, like any unlisted number.
	FaultTokenExpired Fault = "token-expired"
)

// DefaultHangFor is how long a FaultNoAnswer push is held open when
// Config.HangFor is zero.
const DefaultHangFor = 2 * time.Minute

// MessageSpikeArrest is the errorMessage of FaultSpikeArrest's refusal
// (errorCode "500.003.02", HTTP 500).
const MessageSpikeArrest = "Error Occurred: Spike Arrest Violation"

// BodyGatewaySpikeArrest is FaultGatewaySpikeArrest's answer (HTTP 429,
// application/json).
const BodyGatewaySpikeArrest = `{"fault":{"faultstring":"Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=5, periodInMicroseconds=1000000, maxBurstMessageCount=1.0}","detail":{"errorcode":"policies.ratelimit.SpikeArrestViolation"}}}`

// pushFault applies the push's fault, if any, before anything is recorded.
// It returns answered true when the request has been dealt with: f is then
// the refusal to write, or nil when the fault wrote (or dropped) the answer
// itself. FaultMalformedAnswer is applied later, when the answer is written.
func (s *Server) pushFault(w http.ResponseWriter, r *http.Request, o Outcome) (f *failure, answered bool) {
	if o.Fault == FaultNone || o.Fault == FaultMalformedAnswer {
		return nil, false
	}
	switch o.Fault {
	case FaultNoAnswer:
		s.log.Info("stk push fault injected", "fault", string(o.Fault))
		s.hang(w, r)
		return nil, true
	case FaultUnavailable, FaultServerError:
		status := http.StatusServiceUnavailable
		if o.Fault == FaultServerError {
			status = http.StatusInternalServerError
		}
		writeRaw(w, status, "text/html; charset=utf-8", []byte(htmlPage(status)))
	case FaultTooManyRequests:
		writeRaw(w, http.StatusTooManyRequests, "text/plain; charset=utf-8", []byte("429 Too Many Requests\n"))
	case FaultSpikeArrest:
		f = &failure{status: http.StatusInternalServerError, code: "500.003.02", message: MessageSpikeArrest}
	case FaultGatewaySpikeArrest:
		writeRaw(w, http.StatusTooManyRequests, "application/json", []byte(BodyGatewaySpikeArrest))
	case FaultTokenExpired:
		s.mu.Lock()
		fire := !s.tokenFaultFired[o.Phone]
		if fire {
			s.tokenFaultFired[o.Phone] = true
			delete(s.tokens, bearer(r))
		}
		s.mu.Unlock()
		if !fire {
			return nil, false
		}
		f = errTokenSTK
	}
	s.log.Info("stk push fault injected", "fault", string(o.Fault))
	return f, true
}

// hang holds r open until its client gives up, s.hangFor passes or s is
// closed, then drops the connection without writing anything: it hijacks
// the connection and closes it or, where hijacking is impossible (HTTP/2, a
// wrapper without Unwrap), panics with http.ErrAbortHandler, which
// net/http turns into a silent abort.
func (s *Server) hang(w http.ResponseWriter, r *http.Request) {
	timer := time.NewTimer(s.hangFor)
	defer timer.Stop()
	reason := ""
	select {
	case <-r.Context().Done():
		reason = "client gave up"
	case <-timer.C:
		reason = "hang_for passed"
	case <-s.done:
		reason = "simulator closed"
	}
	s.log.Info("stk push dropped without an answer", "reason", reason)
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// htmlPage is the error page a web server in front of Daraja answers with.
func htmlPage(status int) string {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
		title + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// truncateAnswer cuts an STK push acceptance body (JSON) inside its
// ResponseDescription, for FaultMalformedAnswer.
func truncateAnswer(b []byte) []byte {
	const key = `"ResponseDescription":"Success.`
	i := bytes.Index(b, []byte(key))
	if i < 0 { // not an acceptance body: cut it in half
		return b[:len(b)/2]
	}
	return b[:i+len(key)]
}

// countPush records that a push request for phone (the PhoneNumber field's
// text as sent) reached the push handler.
func (s *Server) countPush(phone string) {
	s.mu.Lock()
	s.pushes[phone]++
	s.mu.Unlock()
}

// PushCount returns how many STK push requests whose PhoneNumber is phone
// have reached the push handler, that is, passed the path, method and token
// checks with a body that is a JSON object, whatever happened next: invalid
// fields, wrong credentials, the subscriber-lock refusal, any Fault
// (FaultNoAnswer included, counted before the hold), or acceptance. phone is
// compared with the field's text as sent (a JSON number counts as its
// digits). Requests refused for their token are not counted, so a client's
// replay after FaultTokenExpired counts as a second request. Lets tests prove
// a push was not sent twice. Safe for concurrent use.
func (s *Server) PushCount(phone string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes[phone]
}

// RevokeTokens makes every access token issued so far invalid at once, as
// when tokens expire mid-flight (docs/daraja.md "OAuth"): the next request
// carrying one gets its path's invalid-token refusal (HTTP 404 "404.001.03"
// for STK push and query, HTTP 400 "400.003.01" for C2B). Tokens issued
// afterwards are valid. Safe for concurrent use.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}
