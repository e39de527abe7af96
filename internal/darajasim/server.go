package darajasim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Sandbox credentials published by Safaricom (docs/daraja.md "Sandbox test
// data"), accepted by default.
const (
	// SandboxShortCode is the public STK sandbox shortcode.
	SandboxShortCode = "174379"
	// SandboxPasskey is the public STK passkey for SandboxShortCode.
	SandboxPasskey lipa.Secret = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
)

// DefaultCallbackDelay is the STK callback delay Lipa uses when its
// configuration names none. New does not apply it: a zero
// Config.CallbackDelay means "deliver immediately".
const DefaultCallbackDelay = 2 * time.Second

// TokenLifetime is how long an access token from the OAuth endpoint stays
// valid, measured with Config.Now; the token response says "3599"
// (docs/daraja.md "OAuth").
const TokenLifetime = 3599 * time.Second

// Config configures a Server. The zero value is usable: it accepts any
// non-empty Basic credentials and the sandbox shortcode 174379, and sends STK
// callbacks immediately.
type Config struct {
	// ConsumerKey and ConsumerSecret are the only credentials the OAuth
	// endpoint accepts. When both are empty, any Basic credentials whose key
	// and secret are both non-empty are accepted.
	ConsumerKey    string
	ConsumerSecret lipa.Secret

	// ShortCodes maps each shortcode accepted by STK push and query to its
	// passkey. Nil means {SandboxShortCode: SandboxPasskey}; an empty non-nil
	// map accepts none. New copies the map.
	ShortCodes map[string]lipa.Secret

	// CallbackDelay is how long after accepting an STK push the simulator
	// settles it: marks it final for STK query and POSTs the callback. Zero
	// (or negative) means immediately; callers wanting Daraja-like pacing pass
	// DefaultCallbackDelay.
	CallbackDelay time.Duration

	// HTTPClient sends STK callbacks and C2B notifications. Default: a client
	// with a 10 s timeout.
	HTTPClient *http.Client

	// Logger receives one line per refused request, accepted push, delivery
	// and delivery failure. Default: discard.
	Logger *slog.Logger

	// Now is the clock for token expiry, IDs, receipts, wire timestamps and
	// the Date header of every answer (so a test can play Daraja with a
	// clock that disagrees with the caller's). Default: time.Now. Callback
	// timing uses real timers regardless.
	Now func() time.Time

	// HangFor is how long an STK push with FaultNoAnswer (PhoneNoAnswer) is
	// held open, at most, before its connection is dropped; it ends sooner
	// when the client gives up or Close is called. Zero (or negative) means
	// DefaultHangFor, 2 minutes. Real time, not Now.
	HangFor time.Duration

	// QueryPendingStyle picks how STK query answers for a push that has
	// not settled yet, one of the three shapes recorded from Daraja
	// (docs/daraja.md "STK query"):
	//
	//	"" or QueryPendingError  HTTP 500 {"requestId": <CheckoutRequestID>,
	//	                         "errorCode": "500.001.1001", "errorMessage":
	//	                         "The transaction is being processed"} (default)
	//	QueryPending4999         HTTP 200, the settled answer's fields
	//	                         (ResponseCode "0", ResponseDescription,
	//	                         MerchantRequestID, CheckoutRequestID) with
	//	                         ResultCode "4999" and ResultDesc
	//	                         ResultDescStillProcessing
	//	QueryPendingEmpty        HTTP 200 {"requestId": <CheckoutRequestID>,
	//	                         "errorCode": "500.001.1001", "errorMessage": ""}
	//
	// Any other value is invalid (see Validate). Settled pushes and unknown
	// CheckoutRequestIDs answer the same in every style. The magic phones
	// PhonePending4999 and PhonePendingEmpty pick a style for one push.
	QueryPendingStyle string

	// PromptTimeout is how long the prompt of a push to PhonePending4999 or
	// PhonePendingEmpty stays open, unanswered, before the push ends with
	// ResultCode 1037 (as a prompt nobody answers does). Zero (or negative)
	// means DefaultPromptTimeout. Real time, not Now.
	PromptTimeout time.Duration

	// NoSubscriberLock turns off the subscriber lock: by default a push to a
	// phone whose prompt is still open (a push accepted and not yet settled)
	// is refused with HTTP 500 "500.001.1001" MessageSubscriberLocked, as
	// Daraja refuses it (docs/daraja.md "M-Pesa Express").
	NoSubscriberLock bool

	// Initiators maps each initiator name that Reversal and Transaction
	// Status accept to its password. Nil accepts any initiator name with any
	// non-empty password. New copies the map. See "Initiator credentials"
	// in the package comment for how the password is read.
	Initiators map[string]lipa.Secret

	// StrictCredentials refuses (with ResultCode 2001) a SecurityCredential
	// the simulator cannot decrypt with its own key, such as one encrypted
	// with Safaricom's certificate. By default such a credential is accepted
	// unchecked, so that any Daraja SDK works against the simulator.
	StrictCredentials bool

	// PullExcludesSTK leaves M-Pesa Express (STK push) payments out of Pull
	// Transactions answers. By default they are included, as the evidence
	// in docs/daraja.md "Pull Transactions" suggests; Safaricom does not
	// say.
	PullExcludesSTK bool

	// PullPageSize is the most transactions one Pull query answers. Zero (or
	// negative) means DefaultPullPageSize.
	PullPageSize int

	// LegacyStatusResults makes Transaction Status results take the 2017
	// shape: parameter keys with spaces ("Conversation ID", "Originator
	// Conversation ID"), dates as JSON numbers, CreditPartyName.
	LegacyStatusResults bool
}

// Values of Config.QueryPendingStyle (docs/daraja.md "STK query").
const (
	QueryPendingError = "error"
	QueryPending4999  = "4999"
	QueryPendingEmpty = "empty"
)

// Validate reports the first invalid setting, naming it: today only a
// QueryPendingStyle other than "", QueryPendingError, QueryPending4999 or
// QueryPendingEmpty. Every other field accepts any value.
func (c Config) Validate() error {
	switch c.QueryPendingStyle {
	case "", QueryPendingError, QueryPending4999, QueryPendingEmpty:
		return nil
	}
	return fmt.Errorf("darajasim: invalid QueryPendingStyle %q: want %q, %q, %q or empty",
		c.QueryPendingStyle, QueryPendingError, QueryPending4999, QueryPendingEmpty)
}

// Server is the simulator: an http.Handler speaking Daraja's protocol (see the
// package comment). All state lives in memory behind one mutex; a Server is
// safe for concurrent use. Create it with New and stop it with Close.
type Server struct {
	key        string
	secret     lipa.Secret
	shortCodes map[string]lipa.Secret
	delay      time.Duration
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
	hangFor    time.Duration
	pending    string        // Config.QueryPendingStyle
	done       chan struct{} // closed by Close; releases FaultNoAnswer holds

	wg sync.WaitGroup // pending timers and in-flight deliveries

	mu              sync.Mutex
	closed          bool
	tokens          map[string]time.Time // access token → expiry
	stk             map[string]*stkTxn   // by CheckoutRequestID
	timers          map[string]*time.Timer
	c2b             map[string]c2bRegistration // by shortcode
	balances        map[string]int64           // shortcode → C2B balance, whole shillings
	pushes          map[string]int             // PhoneNumber text → push requests counted (PushCount)
	tokenFaultFired map[string]bool            // phones whose FaultTokenExpired has fired

	promptTimeout     time.Duration
	noLock            bool
	initiators        map[string]lipa.Secret // nil: any
	strictCredentials bool
	pullExcludesSTK   bool
	pullPageSize      int
	legacyStatus      bool

	locks          map[string]string       // phone → CheckoutRequestID of its open prompt
	ledger         []*Transaction          // completed transactions, in order of recording
	byReceipt      map[string]*Transaction // the ledger by receipt
	pullRegistered map[string]bool         // shortcodes registered for Pull
	utility        map[string]int64        // shortcode → utility account balance, whole shillings
}

// New returns a Server configured by cfg, with the defaults documented on
// Config. It starts no goroutines until a request schedules a delivery. New
// panics when cfg.Validate fails; callers taking settings from users should
// call Validate first.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	s := &Server{
		key:        cfg.ConsumerKey,
		secret:     cfg.ConsumerSecret,
		shortCodes: map[string]lipa.Secret{SandboxShortCode: SandboxPasskey},
		delay:      max(cfg.CallbackDelay, 0),
		client:     cfg.HTTPClient,
		log:        cfg.Logger,
		now:        cfg.Now,
		hangFor:    cfg.HangFor,
		pending:    cfg.QueryPendingStyle,
		done:       make(chan struct{}),

		tokens:          make(map[string]time.Time),
		stk:             make(map[string]*stkTxn),
		timers:          make(map[string]*time.Timer),
		c2b:             make(map[string]c2bRegistration),
		balances:        make(map[string]int64),
		pushes:          make(map[string]int),
		tokenFaultFired: make(map[string]bool),

		promptTimeout:     cfg.PromptTimeout,
		noLock:            cfg.NoSubscriberLock,
		strictCredentials: cfg.StrictCredentials,
		pullExcludesSTK:   cfg.PullExcludesSTK,
		pullPageSize:      cfg.PullPageSize,
		legacyStatus:      cfg.LegacyStatusResults,

		locks:          make(map[string]string),
		byReceipt:      make(map[string]*Transaction),
		pullRegistered: make(map[string]bool),
		utility:        make(map[string]int64),
	}
	if s.promptTimeout <= 0 {
		s.promptTimeout = DefaultPromptTimeout
	}
	if s.pullPageSize <= 0 {
		s.pullPageSize = DefaultPullPageSize
	}
	if cfg.Initiators != nil {
		s.initiators = make(map[string]lipa.Secret, len(cfg.Initiators))
		for k, v := range cfg.Initiators {
			s.initiators[k] = v
		}
	}
	if s.hangFor <= 0 {
		s.hangFor = DefaultHangFor
	}
	if cfg.ShortCodes != nil {
		s.shortCodes = make(map[string]lipa.Secret, len(cfg.ShortCodes))
		for k, v := range cfg.ShortCodes {
			s.shortCodes[k] = v
		}
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Close stops pending STK callback timers (those payments then never settle),
// drops at once the connections of STK pushes held open by FaultNoAnswer, and
// waits for deliveries already in flight to finish; in-flight deliveries are
// not cancelled, so Close may wait up to the HTTP client's timeout (and C2B
// validation's 8 s). After Close the Server still answers requests but sends
// nothing (a FaultNoAnswer push is dropped without being held). Close is safe
// to call more than once and concurrently.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for id, t := range s.timers {
		if t.Stop() {
			s.wg.Done() // the timer's function will never run
		}
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// goLocked runs f in a goroutine tracked by Close, unless the Server is
// closed. s.mu must be held.
func (s *Server) goLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// failure is a refusal written as Daraja's error envelope (docs/daraja.md
// "Errors").
type failure struct {
	status    int
	code      string
	message   string
	requestID string // default: a fresh hex-group ID
}

type envelope struct {
	RequestID    string `json:"requestId"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// Refusals shared by several endpoints (docs/daraja.md "Errors").
var (
	errPayload  = &failure{status: http.StatusBadRequest, code: "400.002.05", message: "Invalid Request Payload"}
	errTokenSTK = &failure{status: http.StatusNotFound, code: "404.001.03", message: "Invalid Access Token"}
	errTokenC2B = &failure{status: http.StatusBadRequest, code: "400.003.01", message: "Invalid Access Token"}
	// errTokenPull is the refusal the Pull Transactions page documents.
	errTokenPull = &failure{status: http.StatusUnauthorized, code: "401.001", message: "Invalid Access Token"}
)

// invalid is Daraja's field validation refusal, "400.002.02 Bad Request -
// Invalid <field>".
func invalid(field string) *failure {
	return &failure{status: http.StatusBadRequest, code: "400.002.02", message: "Bad Request - Invalid " + field}
}

// route is one endpoint: its only allowed method, the refusal for a missing
// or unknown bearer token (nil: no token needed), and the handler, which
// writes the success answer itself or returns a refusal.
type route struct {
	method   string
	tokenErr *failure
	handle   func(s *Server, w http.ResponseWriter, r *http.Request) *failure
}

var routes = map[string]route{
	"/oauth/v1/generate":                {http.MethodGet, nil, (*Server).handleOAuth},
	"/mpesa/stkpush/v1/processrequest":  {http.MethodPost, errTokenSTK, (*Server).handleSTKPush},
	"/mpesa/stkpushquery/v1/query":      {http.MethodPost, errTokenSTK, (*Server).handleSTKQuery},
	"/mpesa/c2b/v1/registerurl":         {http.MethodPost, errTokenC2B, (*Server).handleRegisterV1},
	"/mpesa/c2b/v2/registerurl":         {http.MethodPost, errTokenC2B, (*Server).handleRegisterV2},
	"/mpesa/c2b/v1/simulate":            {http.MethodPost, errTokenC2B, (*Server).handleSimulate},
	"/mpesa/c2b/v2/simulate":            {http.MethodPost, errTokenC2B, (*Server).handleSimulate},
	"/mpesa/reversal/v1/request":        {http.MethodPost, errTokenSTK, (*Server).handleReversal},
	"/mpesa/transactionstatus/v1/query": {http.MethodPost, errTokenC2B, (*Server).handleTransactionStatus},
	"/pulltransactions/v1/register":     {http.MethodPost, errTokenPull, (*Server).handlePullRegister},
	"/pulltransactions/v1/query":        {http.MethodPost, errTokenPull, (*Server).handlePullQuery},
}

// ServeHTTP answers one Daraja API request. It checks, in order: the path
// (unknown → 404 "404.001.01 Resource not found"), the method (→ 405
// "405.001 <METHOD> Method Not Allowed"), the bearer token where the endpoint
// needs one, then the endpoint's own rules (see the handlers' docs). Every
// answer carries a Date header read from Config.Now.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	rt, ok := routes[r.URL.Path]
	var f *failure
	switch {
	case !ok:
		f = &failure{status: http.StatusNotFound, code: "404.001.01", message: "Resource not found"}
	case r.Method != rt.method:
		w.Header().Set("Allow", rt.method)
		f = &failure{status: http.StatusMethodNotAllowed, code: "405.001", message: r.Method + " Method Not Allowed"}
	case rt.tokenErr != nil && !s.validToken(r):
		f = rt.tokenErr
	default:
		f = rt.handle(s, w, r)
	}
	if f == nil {
		return
	}
	id := f.requestID
	if id == "" {
		id = newHexID()
	}
	s.log.Info("daraja request refused", "method", r.Method, "path", r.URL.Path,
		"status", f.status, "error_code", f.code, "error_message", f.message)
	writeJSON(w, f.status, envelope{RequestID: id, ErrorCode: f.code, ErrorMessage: f.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeRaw(w, status, "application/json", append(marshal(v), '\n'))
}

// marshal encodes one of the package's own wire types, which always marshal.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("darajasim: marshal answer: " + err.Error())
	}
	return b
}

// writeRaw writes an answer with the given status, Content-Type and body.
func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(body)
}

// maxBody bounds request bodies; Daraja's are a few hundred bytes.
const maxBody = 1 << 20

// decodeBody reads a JSON object from r into v; anything that is not one
// (empty, malformed, trailing data, an array, too large) is 400.002.05.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *failure {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		return errPayload
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return errPayload
	}
	return nil
}

// handleOAuth issues an access token (docs/daraja.md "OAuth"): grant_type
// must be client_credentials (else 400 "400.008.02 Invalid grant type
// passed"), the request must carry Basic credentials (else 400 "400.008.01
// Invalid Authentication passed") that the Config accepts (else the same
// 400.008.01). The answer is {"access_token": <28 chars>, "expires_in":
// "3599"}.
func (s *Server) handleOAuth(w http.ResponseWriter, r *http.Request) *failure {
	if r.URL.Query().Get("grant_type") != "client_credentials" {
		return &failure{status: http.StatusBadRequest, code: "400.008.02", message: "Invalid grant type passed"}
	}
	key, secret, ok := r.BasicAuth()
	if !ok || !s.credentialsOK(key, secret) {
		return &failure{status: http.StatusBadRequest, code: "400.008.01", message: "Invalid Authentication passed"}
	}
	token := newToken()
	now := s.now()
	s.mu.Lock()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[token] = now.Add(TokenLifetime)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   string `json:"expires_in"`
	}{token, "3599"})
	return nil
}

func (s *Server) credentialsOK(key, secret string) bool {
	if s.key == "" && s.secret == "" {
		return key != "" && secret != ""
	}
	k := subtle.ConstantTimeCompare([]byte(key), []byte(s.key))
	v := subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret.Reveal()))
	return k&v == 1
}

// validToken reports whether r carries "Authorization: Bearer <token>" with
// a token this Server issued that has not expired.
func (s *Server) validToken(r *http.Request) bool {
	token := bearer(r)
	if token == "" {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[token]
	return ok && now.Before(exp)
}

// bearer returns the token of r's "Authorization: Bearer <token>" header, or
// "" when there is none.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
