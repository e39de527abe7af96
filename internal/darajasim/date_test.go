package darajasim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
)

// TestDateHeaderFollowsNow: every answer, a token or a refusal, carries a
// Date header read from Config.Now, so a test can play a Daraja whose clock
// disagrees with the caller's.
func TestDateHeaderFollowsNow(t *testing.T) {
	skewed := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	_, base := newSim(t, darajasim.Config{Now: func() time.Time { return skewed }})
	for _, c := range []struct {
		name, path string
		status     int
	}{
		{"token", "/oauth/v1/generate?grant_type=client_credentials", http.StatusOK},
		{"unknown path", "/no/such/api", http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, base+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("key", "secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got, err := http.ParseTime(resp.Header.Get("Date"))
			if resp.StatusCode != c.status || err != nil || !got.Equal(skewed) {
				t.Errorf("got HTTP %d, Date %q (%v); want HTTP %d, Date %s", resp.StatusCode, resp.Header.Get("Date"), err, c.status, skewed.Format(http.TimeFormat))
			}
		})
	}
}
