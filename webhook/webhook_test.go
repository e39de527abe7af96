package webhook

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("whsec_test_0123456789")
	testBody   = []byte(`{"id":"evt_1","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_1"}}`)
	testNow    = time.Unix(1735787045, 0)
)

func TestSignFormat(t *testing.T) {
	h := Sign(testSecret, testNow.Add(999*time.Millisecond), testBody)
	prefix := "t=" + strconv.FormatInt(testNow.Unix(), 10) + ",v1="
	if !strings.HasPrefix(h, prefix) {
		t.Fatalf("got header %q, want prefix %q", h, prefix)
	}
	sig := strings.TrimPrefix(h, prefix)
	if len(sig) != 64 || strings.ToLower(sig) != sig {
		t.Errorf("got signature %q, want 64 lower-case hex digits", sig)
	}
}

func TestVerify(t *testing.T) {
	valid := Sign(testSecret, testNow, testBody)
	sig := strings.TrimPrefix(valid, "t="+strconv.FormatInt(testNow.Unix(), 10)+",v1=")
	ts := strconv.FormatInt(testNow.Unix(), 10)
	other := Sign([]byte("old secret"), testNow, testBody)
	otherSig := other[strings.Index(other, "v1=")+3:]

	tests := []struct {
		name      string
		header    string
		body      []byte
		secret    []byte
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{name: "round trip", header: valid, want: nil},
		{name: "tampered body", header: valid, body: []byte(`{"id":"evt_2"}`), want: ErrNoMatch},
		{name: "empty body tampered", header: valid, body: []byte{}, want: ErrNoMatch},
		{name: "wrong secret", header: valid, secret: []byte("another secret"), want: ErrNoMatch},
		{name: "empty secret", header: valid, secret: []byte{}, want: ErrNoMatch},
		{name: "6 minutes old", header: valid, now: testNow.Add(6 * time.Minute), want: ErrTooOld},
		{name: "6 minutes in the future", header: valid, now: testNow.Add(-6 * time.Minute), want: ErrTooOld},
		{name: "exactly tolerance old", header: valid, now: testNow.Add(DefaultTolerance), want: nil},
		{name: "exactly tolerance ahead", header: valid, now: testNow.Add(-DefaultTolerance), want: nil},
		{name: "just past tolerance", header: valid, now: testNow.Add(DefaultTolerance + time.Nanosecond), want: ErrTooOld},
		{name: "custom tolerance", header: valid, tolerance: time.Minute, now: testNow.Add(2 * time.Minute), want: ErrTooOld},
		{name: "custom tolerance ok", header: valid, tolerance: 10 * time.Minute, now: testNow.Add(6 * time.Minute), want: nil},
		{name: "negative tolerance means default", header: valid, tolerance: -time.Second, now: testNow.Add(4 * time.Minute), want: nil},
		{name: "old timestamp with wrong secret", header: valid, secret: []byte("x"), now: testNow.Add(time.Hour), want: ErrNoMatch},
		{name: "second v1 matches", header: "t=" + ts + ",v1=" + otherSig + ",v1=" + sig, want: nil},
		{name: "first v1 matches", header: "t=" + ts + ",v1=" + sig + ",v1=" + otherSig, want: nil},
		{name: "no v1 matches", header: "t=" + ts + ",v1=" + otherSig + ",v1=" + otherSig, want: ErrNoMatch},
		{name: "spaces after commas", header: "t=" + ts + ", v1=" + otherSig + ", v1=" + sig, want: nil},
		{name: "upper-case hex", header: "t=" + ts + ",v1=" + strings.ToUpper(sig), want: nil},
		{name: "v1 first", header: "v1=" + sig + ",t=" + ts, want: nil},
		{name: "unknown keys ignored", header: "t=" + ts + ",v0=abc,v2=def,v1=" + sig + ",x", want: nil},
		{name: "non-hex v1", header: "t=" + ts + ",v1=zz" + sig[2:], want: ErrNoMatch},
		{name: "empty v1", header: "t=" + ts + ",v1=", want: ErrNoMatch},
		{name: "truncated v1", header: "t=" + ts + ",v1=" + sig[:62], want: ErrNoMatch},
		{name: "timestamp changed", header: "t=" + strconv.FormatInt(testNow.Unix()+1, 10) + ",v1=" + sig, want: ErrNoMatch},
		{name: "empty", header: "", want: ErrMissingHeader},
		{name: "blank", header: "  ", want: ErrMissingHeader},
		{name: "t= only", header: "t=", want: ErrMalformedHeader},
		{name: "v1 only", header: "v1=abc", want: ErrMalformedHeader},
		{name: "t not a number", header: "t=abc,v1=" + sig, want: ErrMalformedHeader},
		{name: "t fractional", header: "t=" + ts + ".5,v1=" + sig, want: ErrMalformedHeader},
		{name: "t overflows", header: "t=99999999999999999999,v1=" + sig, want: ErrMalformedHeader},
		{name: "garbage", header: "garbage", want: ErrMalformedHeader},
		{name: "missing v1", header: "t=" + ts, want: ErrMalformedHeader},
		{name: "two timestamps", header: "t=" + ts + ",t=" + ts + ",v1=" + sig, want: ErrMalformedHeader},
		{name: "huge timestamp", header: "t=9223372036854775807,v1=" + sig, want: ErrNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, secret, now := tt.body, tt.secret, tt.now
			if body == nil {
				body = testBody
			}
			if secret == nil {
				secret = testSecret
			}
			if now.IsZero() {
				now = testNow
			}
			err := Verify(tt.header, body, secret, tt.tolerance, now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q): got error %v, want %v", tt.header, err, tt.want)
			}
		})
	}
}

// TestVerifyExtremeTimestamps checks that timestamps far from now, signed
// correctly, are ErrTooOld and not accepted through an overflow.
func TestVerifyExtremeTimestamps(t *testing.T) {
	for _, sec := range []int64{-1 << 63, -1 << 62, 0, 1 << 62, 1<<63 - 1} {
		h := Sign(testSecret, time.Unix(sec, 0), testBody)
		if err := Verify(h, testBody, testSecret, 0, testNow); !errors.Is(err, ErrTooOld) {
			t.Errorf("t=%d: got error %v, want ErrTooOld", sec, err)
		}
	}
}

func TestVerifyRequest(t *testing.T) {
	newRequest := func(body string, header string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/lipa", strings.NewReader(body))
		if header != "" {
			r.Header.Set(HeaderName, header)
		}
		return r
	}
	now := time.Now()

	t.Run("valid", func(t *testing.T) {
		r := newRequest(string(testBody), Sign(testSecret, now, testBody))
		got, err := VerifyRequest(r, testSecret, 0)
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		if string(got) != string(testBody) {
			t.Errorf("got body %q, want %q", got, testBody)
		}
	})
	t.Run("body exactly maxBytes", func(t *testing.T) {
		r := newRequest(string(testBody), Sign(testSecret, now, testBody))
		if _, err := VerifyRequest(r, testSecret, int64(len(testBody))); err != nil {
			t.Errorf("got error %v, want nil", err)
		}
	})
	t.Run("body over maxBytes", func(t *testing.T) {
		r := newRequest(string(testBody), Sign(testSecret, now, testBody))
		got, err := VerifyRequest(r, testSecret, int64(len(testBody))-1)
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			t.Fatalf("got error %v, want *http.MaxBytesError", err)
		}
		if tooLarge.Limit != int64(len(testBody))-1 {
			t.Errorf("got limit %d, want %d", tooLarge.Limit, len(testBody)-1)
		}
		if got != nil {
			t.Errorf("got body %q, want nil", got)
		}
	})
	t.Run("body over default limit", func(t *testing.T) {
		big := strings.Repeat("x", DefaultMaxBytes+1)
		r := newRequest(big, Sign(testSecret, now, []byte(big)))
		var tooLarge *http.MaxBytesError
		if _, err := VerifyRequest(r, testSecret, 0); !errors.As(err, &tooLarge) {
			t.Errorf("got error %v, want *http.MaxBytesError", err)
		}
	})
	t.Run("max int64 limit", func(t *testing.T) {
		r := newRequest(string(testBody), Sign(testSecret, now, testBody))
		if _, err := VerifyRequest(r, testSecret, 1<<63-1); err != nil {
			t.Errorf("got error %v, want nil", err)
		}
	})
	t.Run("missing header", func(t *testing.T) {
		r := newRequest(string(testBody), "")
		if _, err := VerifyRequest(r, testSecret, 0); !errors.Is(err, ErrMissingHeader) {
			t.Errorf("got error %v, want ErrMissingHeader", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		r := newRequest(string(testBody), Sign([]byte("other"), now, testBody))
		if _, err := VerifyRequest(r, testSecret, 0); !errors.Is(err, ErrNoMatch) {
			t.Errorf("got error %v, want ErrNoMatch", err)
		}
	})
	t.Run("old timestamp", func(t *testing.T) {
		r := newRequest(string(testBody), Sign(testSecret, now.Add(-6*time.Minute), testBody))
		if _, err := VerifyRequest(r, testSecret, 0); !errors.Is(err, ErrTooOld) {
			t.Errorf("got error %v, want ErrTooOld", err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(Sign(testSecret, testNow, testBody), testBody)
	f.Add("t=1,v1=00,v1=zz, v2=", []byte("x"))
	f.Add("t=-9223372036854775808,v1=", []byte{})
	f.Add(",,,=,t==,v1==", []byte(nil))
	f.Add("garbage", []byte("{}"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := Verify(header, body, testSecret, 0, testNow)
		switch {
		case err == nil, errors.Is(err, ErrMissingHeader), errors.Is(err, ErrMalformedHeader),
			errors.Is(err, ErrTooOld), errors.Is(err, ErrNoMatch):
		default:
			t.Errorf("Verify(%q): got error %v, want nil or one of the sentinel errors", header, err)
		}
		// Whatever Sign produces for this body must verify.
		if err := Verify(Sign(testSecret, testNow, body), body, testSecret, 0, testNow); err != nil {
			t.Errorf("round trip: got error %v, want nil", err)
		}
	})
}
