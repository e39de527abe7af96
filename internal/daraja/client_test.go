package daraja_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := daraja.Config{BaseURL: daraja.SandboxURL, ConsumerKey: "k", ConsumerSecret: "s"}
	tests := []struct {
		name    string
		mod     func(*daraja.Config)
		wantErr string // substring; "" means no error
	}{
		{"sandbox", func(*daraja.Config) {}, ""},
		{"spaces and trailing slash", func(c *daraja.Config) { c.BaseURL = " https://api.safaricom.co.ke/ " }, ""},
		{"with path prefix", func(c *daraja.Config) { c.BaseURL = "http://127.0.0.1:8080/daraja" }, ""},
		{"empty", func(c *daraja.Config) { c.BaseURL = "" }, "BaseURL"},
		{"relative", func(c *daraja.Config) { c.BaseURL = "sandbox.safaricom.co.ke" }, "BaseURL"},
		{"ftp", func(c *daraja.Config) { c.BaseURL = "ftp://sandbox.safaricom.co.ke" }, "BaseURL"},
		{"query", func(c *daraja.Config) { c.BaseURL = "https://sandbox.safaricom.co.ke?x=1" }, "BaseURL"},
		{"inner space", func(c *daraja.Config) { c.BaseURL = "https://sandbox.safaricom .co.ke" }, "BaseURL"},
		{"no key", func(c *daraja.Config) { c.ConsumerKey = " " }, "ConsumerKey"},
		{"no secret", func(c *daraja.Config) { c.ConsumerSecret = "" }, "ConsumerSecret"},
		{"negative timeout", func(c *daraja.Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := daraja.New(cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: got error %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New: got error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestBaseURLTrimmed(t *testing.T) {
	f := newFake(t, nil)
	c := newClient(t, " "+f.URL+"/ ", func(cfg *daraja.Config) { cfg.ConsumerKey = " " + testKey + "\t" })
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
}

func TestTokenCaching(t *testing.T) {
	tests := []struct {
		fixture string
		body    []byte
		life    time.Duration // expires_in
		fresh   time.Duration // reused until at least this age
		stale   time.Duration // refetched from this age on
	}{
		{fixture: "oauth-token.json", life: 3599 * time.Second, fresh: 3538 * time.Second, stale: 3539 * time.Second},
		{fixture: "oauth-token-expires-in-number.json", life: 3599 * time.Second, fresh: 3538 * time.Second, stale: 3539 * time.Second},
		{fixture: "short lifetime", body: []byte(`{"access_token":"short","expires_in":"30"}`), fresh: 14 * time.Second, stale: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = fixture(t, tt.fixture)
			}
			f := newFake(t, map[string]http.HandlerFunc{oauthRoute: tokenHandler(t, body)})
			clk := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
			c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Now = clk.Now })
			ctx := context.Background()

			first, err := c.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			clk.Advance(tt.fresh)
			second, err := c.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if second != first {
				t.Errorf("cached token: got %q, want %q", second, first)
			}
			if n := f.tokenCalls.Load(); n != 1 {
				t.Errorf("token requests at age %v: got %d, want 1", tt.fresh, n)
			}
			clk.Advance(tt.stale - tt.fresh)
			if _, err := c.Token(ctx); err != nil {
				t.Fatalf("Token: %v", err)
			}
			if n := f.tokenCalls.Load(); n != 2 {
				t.Errorf("token requests at age %v: got %d, want 2", tt.stale, n)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	html := []byte("<html><body><h1>503 Service Unavailable</h1>\n</body></html>")
	tests := []struct {
		name    string
		handler func(t *testing.T) http.HandlerFunc
		key     string
		check   func(t *testing.T, err error)
	}{
		{
			name:    "wrong key: HTTP 400 empty body",
			handler: func(t *testing.T) http.HandlerFunc { return tokenHandler(t, nil) },
			key:     "wrong",
			check: func(t *testing.T, err error) {
				var got *daraja.AuthError
				if !errors.As(err, &got) {
					t.Fatalf("error: got %T %v, want *daraja.AuthError", err, err)
				}
				if diff := cmp.Diff(&daraja.AuthError{HTTPStatus: 400}, got); diff != "" {
					t.Errorf("AuthError (-want +got):\n%s", diff)
				}
				if !strings.Contains(err.Error(), "consumer key or secret") {
					t.Errorf("message: got %q, want it to name the consumer key or secret", err)
				}
				if got.Class() != daraja.ClassConfiguration {
					t.Errorf("Class: got %q, want %q", got.Class(), daraja.ClassConfiguration)
				}
			},
		},
		{
			name:    "HTTP 401 empty body",
			handler: func(t *testing.T) http.HandlerFunc { return serveType(401, "", nil) },
			check: func(t *testing.T, err error) {
				var got *daraja.AuthError
				if !errors.As(err, &got) || got.HTTPStatus != 401 {
					t.Fatalf("error: got %T %v, want *daraja.AuthError with HTTP 401", err, err)
				}
			},
		},
		{
			name: "invalid authentication envelope",
			handler: func(t *testing.T) http.HandlerFunc {
				return serve(400, fixture(t, "oauth-error-invalid-authentication.json"))
			},
			check: wantAPIError("oauth", 400, "400.008.01", daraja.ReasonWrongCredentials, daraja.ClassConfiguration),
		},
		{
			name: "invalid grant type envelope",
			handler: func(t *testing.T) http.HandlerFunc {
				return serve(400, fixture(t, "oauth-error-invalid-grant-type.json"))
			},
			check: wantAPIError("oauth", 400, "400.008.02", daraja.ReasonBadRequest, daraja.ClassConfiguration),
		},
		{
			name:    "HTML 503",
			handler: func(t *testing.T) http.HandlerFunc { return serveType(503, "text/html", html) },
			check:   wantBadResponse("oauth", 503, "text/html", daraja.ClassRetryable),
		},
		{
			name: "no access_token",
			handler: func(t *testing.T) http.HandlerFunc {
				return serve(200, []byte(`{"access_token":"","expires_in":"3599"}`))
			},
			check: wantBadResponse("oauth", 200, "application/json", daraja.ClassFinal),
		},
		{
			name: "bad expires_in",
			handler: func(t *testing.T) http.HandlerFunc {
				return serve(200, []byte(`{"access_token":"secret-token","expires_in":"soon"}`))
			},
			check: func(t *testing.T, err error) {
				wantBadResponse("oauth", 200, "application/json", daraja.ClassFinal)(t, err)
				if strings.Contains(err.Error(), "secret-token") {
					t.Errorf("message: got %q, want no token in it", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{oauthRoute: tt.handler(t)})
			c := newClient(t, f.URL, func(cfg *daraja.Config) {
				if tt.key != "" {
					cfg.ConsumerKey = tt.key
				}
			})
			_, err := c.Token(context.Background())
			if err == nil {
				t.Fatal("Token: got nil error, want one")
			}
			tt.check(t, err)
			// STKPush surfaces the same OAuth error.
			_, err = c.STKPush(context.Background(), pushRequest())
			if err == nil {
				t.Fatal("STKPush: got nil error, want one")
			}
			tt.check(t, err)
		})
	}
}

func wantAPIError(op string, status int, code string, reason daraja.Reason, class daraja.Class) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var got *daraja.APIError
		if !errors.As(err, &got) {
			t.Fatalf("error: got %T %v, want *daraja.APIError", err, err)
		}
		if got.Op != op || got.HTTPStatus != status || got.ErrorCode != code {
			t.Errorf("APIError: got op %q HTTP %d code %q, want %q %d %q", got.Op, got.HTTPStatus, got.ErrorCode, op, status, code)
		}
		if got.Reason() != reason || got.Class() != class {
			t.Errorf("classification: got %q/%q, want %q/%q", got.Reason(), got.Class(), reason, class)
		}
	}
}

func wantBadResponse(op string, status int, contentType string, class daraja.Class) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var got *daraja.BadResponseError
		if !errors.As(err, &got) {
			t.Fatalf("error: got %T %v, want *daraja.BadResponseError", err, err)
		}
		if got.Op != op || got.HTTPStatus != status || got.ContentType != contentType {
			t.Errorf("BadResponseError: got op %q HTTP %d %q, want %q %d %q", got.Op, got.HTTPStatus, got.ContentType, op, status, contentType)
		}
		if got.Class() != class {
			t.Errorf("Class: got %q, want %q", got.Class(), class)
		}
		if strings.ContainsAny(got.Snippet, "\n\r\t") || len(got.Snippet) > 200 {
			t.Errorf("Snippet: got %q, want at most 200 bytes on one line", got.Snippet)
		}
	}
}

func TestConcurrentPushesFetchOneToken(t *testing.T) {
	rt := &rotatingTokens{}
	f := newFake(t, map[string]http.HandlerFunc{
		oauthRoute: rt.handler,
		pushRoute:  serve(200, fixture(t, "stk-push-response-ok.json")),
	})
	c := newClient(t, f.URL)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.STKPush(context.Background(), pushRequest())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("STKPush: %v", err)
		}
	}
	if got := f.tokenCalls.Load(); got != 1 {
		t.Errorf("token requests: got %d, want 1", got)
	}
	if got := f.calls.Load(); got != n {
		t.Errorf("push requests: got %d, want %d", got, n)
	}
}

func TestInvalidTokenRefresh(t *testing.T) {
	tests := []struct {
		name       string
		refusal    string // fixture
		status     int
		refusals   int // how many pushes the server refuses before accepting
		wantErr    bool
		wantTokens int64
		wantPushes int64
	}{
		{"404.001.03 once", "stk-push-error-invalid-access-token.json", 404, 1, false, 2, 2},
		{"401.002.01 once", "error-invalid-access-token-401.json", 401, 1, false, 2, 2},
		{"404.001.03 twice", "stk-push-error-invalid-access-token.json", 404, 2, true, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			left := tt.refusals
			refusal := fixture(t, tt.refusal)
			ok := fixture(t, "stk-push-response-ok.json")
			f := newFake(t, map[string]http.HandlerFunc{
				pushRoute: func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					refuse := left > 0
					left--
					mu.Unlock()
					if refuse {
						serve(tt.status, refusal)(w, r)
						return
					}
					serve(200, ok)(w, r)
				},
			})
			_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
			if tt.wantErr {
				var apiErr *daraja.APIError
				if !errors.As(err, &apiErr) || apiErr.Reason() != daraja.ReasonInvalidToken {
					t.Errorf("error: got %v, want an APIError with ReasonInvalidToken", err)
				}
			} else if err != nil {
				t.Errorf("STKPush: got %v, want success after one refresh", err)
			}
			if got := f.tokenCalls.Load(); got != tt.wantTokens {
				t.Errorf("token requests: got %d, want %d", got, tt.wantTokens)
			}
			if got := f.calls.Load(); got != tt.wantPushes {
				t.Errorf("push requests: got %d, want %d", got, tt.wantPushes)
			}
		})
	}
}

func TestNoAPIProductIsNotRetried(t *testing.T) {
	body := []byte(`{"requestId":"10000-1000021-1","errorCode":"401.003.01","errorMessage":"Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found"}`)
	f := newFake(t, map[string]http.HandlerFunc{"POST /mpesa/c2b/v1/registerurl": serve(401, body)})
	_, err := newClient(t, f.URL).RegisterC2BURLs(context.Background(), "v1", daraja.RegisterURLRequest{ShortCode: "600984"})
	wantAPIError("c2b register", 401, "401.003.01", daraja.ReasonNoAPIProduct, daraja.ClassConfiguration)(t, err)
	if got := f.tokenCalls.Load(); got != 1 {
		t.Errorf("token requests: got %d, want 1", got)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("register requests: got %d, want 1", got)
	}
}

func TestConcurrentRefusalsShareOneRefresh(t *testing.T) {
	rt := &rotatingTokens{}
	refusal := fixture(t, "stk-push-error-invalid-access-token.json")
	ok := fixture(t, "stk-push-response-ok.json")
	f := newFake(t, map[string]http.HandlerFunc{
		oauthRoute: rt.handler,
		pushRoute: func(w http.ResponseWriter, r *http.Request) {
			if !rt.accepts(r) {
				serve(404, refusal)(w, r)
				return
			}
			serve(200, ok)(w, r)
		},
	})
	c := newClient(t, f.URL)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	rt.revoke() // the cached tok-1 is now refused
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.STKPush(context.Background(), pushRequest())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("STKPush: %v", err)
		}
	}
	if got := f.tokenCalls.Load(); got != 2 {
		t.Errorf("token requests: got %d, want 2 (initial + one shared refresh)", got)
	}
}

func TestBadResponses(t *testing.T) {
	html := []byte("<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\x00\x01 upstream down " + strings.Repeat("x", 400) + "</body></html>")
	tests := []struct {
		name        string
		status      int
		contentType string
		body        []byte
		class       daraja.Class
		snippet     string // prefix of the expected Snippet
	}{
		{"HTML 503", 503, "text/html", html, daraja.ClassRetryable, "<!DOCTYPE html> <html><head><title>503 Service Temporarily Unavailable</title></head> <body> upstream down xxx"},
		{"empty 500", 500, "", nil, daraja.ClassRetryable, ""},
		{"malformed JSON 200", 200, "application/json", []byte(`{"MerchantRequestID":"1",`), daraja.ClassFinal, `{"MerchantRequestID":"1",`},
		{"JSON array 200", 200, "application/json", []byte(`[]`), daraja.ClassFinal, `[]`},
		{"no CheckoutRequestID", 200, "application/json", []byte(`{"ResponseCode":"0"}`), daraja.ClassFinal, `{"ResponseCode":"0"}`},
		{"429 text", 429, "text/plain", []byte("Too Many Requests"), daraja.ClassRetryable, "Too Many Requests"},
		{"JSON without envelope 500", 500, "application/json", []byte(`{"fault":{"faultstring":"Gateway Timeout"}}`), daraja.ClassRetryable, `{"fault"`},
		{"redirect", 302, "text/html", []byte("moved"), daraja.ClassFinal, "moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{pushRoute: func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				serveType(tt.status, tt.contentType, tt.body)(w, r)
			}})
			_, err := newClient(t, f.URL).STKPush(context.Background(), pushRequest())
			var got *daraja.BadResponseError
			if !errors.As(err, &got) {
				t.Fatalf("error: got %T %v, want *daraja.BadResponseError", err, err)
			}
			if got.Op != "stk push" || got.HTTPStatus != tt.status {
				t.Errorf("got op %q HTTP %d, want %q %d", got.Op, got.HTTPStatus, "stk push", tt.status)
			}
			if tt.contentType != "" && got.ContentType != tt.contentType {
				t.Errorf("ContentType: got %q, want %q", got.ContentType, tt.contentType)
			}
			if got.Class() != tt.class {
				t.Errorf("Class: got %q, want %q", got.Class(), tt.class)
			}
			if !strings.HasPrefix(got.Snippet, tt.snippet) || len(got.Snippet) > 200 || strings.ContainsAny(got.Snippet, "\x00\x01\n\r") {
				t.Errorf("Snippet: got %q, want a clean prefix %q of at most 200 bytes", got.Snippet, tt.snippet)
			}
			if f.calls.Load() != 1 {
				t.Errorf("push requests: got %d, want 1", f.calls.Load())
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{pushRoute: hang})
	c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := c.STKPush(context.Background(), pushRequest())
	if !errors.Is(err, daraja.ErrTimeout) {
		t.Fatalf("error: got %v, want ErrTimeout", err)
	}
	if errors.Is(err, daraja.ErrUnreachable) {
		t.Errorf("error: got %v, want it not to be ErrUnreachable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want about the 100ms timeout", d)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("push requests: got %d, want 1 (never resent)", got)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	c := newClient(t, "http://"+addr)
	_, err = c.STKPush(context.Background(), pushRequest())
	if !errors.Is(err, daraja.ErrUnreachable) {
		t.Fatalf("error: got %v, want ErrUnreachable", err)
	}
	if errors.Is(err, daraja.ErrTimeout) {
		t.Errorf("error: got %v, want it not to be ErrTimeout", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error: got %v, want it to wrap the *net.OpError", err)
	}
}

func TestCallerCancel(t *testing.T) {
	started := make(chan struct{})
	f := newFake(t, map[string]http.HandlerFunc{pushRoute: func(w http.ResponseWriter, r *http.Request) {
		close(started)
		hang(w, r)
	}})
	c := newClient(t, f.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.STKPush(ctx, pushRequest())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error: got %v, want context.Canceled", err)
	}
}

func TestLogging(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake(t, map[string]http.HandlerFunc{
		pushRoute: serve(500, fixture(t, "stk-push-error-subscriber-locked.json")),
	})
	c := newClient(t, f.URL, func(cfg *daraja.Config) { cfg.Logger = logger })
	if _, err := c.STKPush(context.Background(), pushRequest()); err == nil {
		t.Fatal("STKPush: got nil error, want one")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{
		"path=/oauth/v1/generate", "outcome=ok",
		"path=/mpesa/stkpush/v1/processrequest", "outcome=api_error", "error_code=500.001.1001", "reason=subscriber_busy", "status=500", "duration=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log: got\n%s\nwant it to contain %q", out, want)
		}
	}
	for _, secret := range []string{fixtureToken, testSecret, string(sandboxPasskey)} {
		if strings.Contains(out, secret) {
			t.Errorf("log: got\n%s\nwant no %q in it", out, secret)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
