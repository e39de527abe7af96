package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// replica is one `lipa serve` process.
type replica struct {
	url string
	cmd *exec.Cmd
	out *bytes.Buffer
}

// buildLipa builds cmd/lipa (with the race detector when the test binary
// has it) into a temporary directory and returns the binary's path.
func buildLipa(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lipa")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplicas starts n `lipa serve` processes on one database, all
// talking to the Daraja simulator at darajaURL, and waits until each
// answers /healthz.
func startReplicas(t *testing.T, bin, databaseURL, darajaURL string, n int) []*replica {
	t.Helper()
	dir := t.TempDir()
	var rs []*replica
	for i := range n {
		addr := freeAddr(t)
		r := &replica{url: "http://" + addr, out: &bytes.Buffer{}}
		r.cmd = exec.Command(bin, "serve")
		r.cmd.Dir = dir
		r.cmd.Env = append(os.Environ(),
			"DATABASE_URL="+databaseURL, "LISTEN_ADDR="+addr, "MPESA_ENVIRONMENT=simulator",
			"MPESA_BASE_URL="+darajaURL, fmt.Sprintf("LOG_FILE=%s/replica%d.log", dir, i),
			"MPESA_ALLOW_TOKENLESS_CALLBACKS=true", "LIPA_APP_RATE_LIMIT=0")
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.cmd.Wait()
			if t.Failed() {
				t.Logf("replica %s output:\n%s", r.url, r.out)
			}
		})
		rs = append(rs, r)
	}
	for _, r := range rs {
		deadline := time.Now().Add(60 * time.Second)
		health := processClient(t, r.url, "", 10*time.Second)
		for {
			if health.Health(context.Background()) == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s did not become healthy:\n%s", r.url, r.out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return rs
}

// postTo posts a Safaricom payload (a callback, a C2B confirmation) to the
// lipa process at base through hc and returns the answer's status; a
// transport error fails the test and returns 0. It may run on any
// goroutine.
func postTo(t *testing.T, hc *http.Client, base, path string, body any) int {
	r, err := sendTo(hc, base, http.MethodPost, path, nil, body)
	if err != nil && r.Status == 0 {
		t.Errorf("POST %s%s: %v", base, path, err)
	}
	return r.Status
}

func successCallback(checkoutID string, amount int, receipt, phone string) map[string]any {
	return map[string]any{"Body": map[string]any{"stkCallback": map[string]any{
		"MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": checkoutID, "ResultCode": 0,
		"ResultDesc": "The service request is processed successfully.",
		"CallbackMetadata": map[string]any{"Item": []map[string]any{
			{"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
			{"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261129101500},
			{"Name": "PhoneNumber", "Value": json.Number(phone)},
		}},
	}}}
}

// TestReplicasActAsOneService starts three real `lipa serve` processes on
// one PostgreSQL database and checks that they behave as one service.
func TestReplicasActAsOneService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three lipa processes")
	}
	databaseURL := sqlstoretest.URL(t, sqlstore.Postgres)
	bin := buildLipa(t)

	// The Daraja simulator, wrapped: when early is set, the STK callback for
	// a push is delivered to that replica before the push's answer goes back
	// to the replica that made it, so the callback arrives first.
	sim := darajasim.New(darajasim.Config{CallbackDelay: time.Hour})
	t.Cleanup(sim.Close)
	// Every request to a replica is checked against the OpenAPI document.
	hc := checkedClient(t, &http.Transport{})
	t.Cleanup(hc.CloseIdleConnections)
	var mu sync.Mutex
	var early string
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target := early
		mu.Unlock()
		if target == "" || r.URL.Path != "/mpesa/stkpush/v1/processrequest" {
			sim.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		var ans struct{ CheckoutRequestID string }
		json.Unmarshal(rec.Body.Bytes(), &ans)
		st := postTo(t, hc, target, "/api/mpesa/stk-callback/", successCallback(ans.CheckoutRequestID, 77, "UKEARLY001", "254711000077"))
		if st != 200 {
			t.Errorf("early callback: got status %d, want 200", st)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	simSrv := httptest.NewServer(wrapped)
	t.Cleanup(simSrv.Close)

	rs := startReplicas(t, bin, databaseURL, simSrv.URL, 3)
	var stdout, stderr bytes.Buffer
	cli := exec.Command(bin, "apps", "create", "shop", "--json")
	cli.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "LOG_FILE="+filepath.Join(t.TempDir(), "cli.log"))
	cli.Stdout, cli.Stderr = &stdout, &stderr
	if err := cli.Run(); err != nil {
		t.Fatalf("apps create: %v: %s", err, stderr.String())
	}
	var created struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal(stdout.Bytes(), &created)
	key := created.APIKey
	ctx := context.Background()
	apps := make([]*client.Client, len(rs)) // the app's client of each replica
	for i, r := range rs {
		apps[i] = processClient(t, r.url, key, 30*time.Second)
	}

	t.Run("callback on another replica settles the push", func(t *testing.T) {
		var ids []string
		for i := range 10 {
			a, b := rs[i%3], rs[(i+1)%3]
			phone := fmt.Sprintf("2547110%05d", i)
			push, err := apps[i%3].Push(ctx, client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(int64(10 + i)), Reference: fmt.Sprintf("REP%d", i)})
			if err != nil {
				t.Fatalf("push on %s: got %v", a.url, err)
			}
			cb := successCallback(push.CheckoutRequestID, 10+i, fmt.Sprintf("UKREP%05d", i), phone)
			if st := postTo(t, hc, b.url, "/api/mpesa/stk-callback/", cb); st != 200 {
				t.Fatalf("callback on %s: got %d", b.url, st)
			}
			ids = append(ids, push.PaymentID)
		}
		for i, id := range ids {
			p, err := apps[(i+2)%3].Payment(ctx, id)
			if err != nil || p.Status != client.StatusSuccess {
				t.Fatalf("payment %s: got %+v (error %v), want SUCCESS", id, p, err)
			}
		}

		// 300 concurrent claims spread over the replicas, 30 for each payment.
		type result struct {
			id     string
			status int
		}
		results := make(chan result, 300)
		var wg sync.WaitGroup
		for n := range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := ids[n%10]
				_, err := apps[n%3].Claim(ctx, client.ClaimRequest{PaymentID: id})
				st := http.StatusOK
				if le := (*client.Error)(nil); errors.As(err, &le) {
					st = le.StatusCode
				} else if err != nil {
					t.Errorf("claim of %s: %v", id, err)
					st = 0
				}
				results <- result{id, st}
			}()
		}
		wg.Wait()
		close(results)
		count := map[string]map[int]int{}
		for r := range results {
			if count[r.id] == nil {
				count[r.id] = map[int]int{}
			}
			count[r.id][r.status]++
		}
		for _, id := range ids {
			if c := count[id]; c[200] != 1 || c[409] != 29 {
				t.Errorf("claims of %s: got %v, want exactly one 200 and 29 409s", id, c)
			}
		}
	})

	t.Run("callback delivered before the push's answer is saved", func(t *testing.T) {
		mu.Lock()
		early = rs[1].url
		mu.Unlock()
		defer func() { mu.Lock(); early = ""; mu.Unlock() }()
		push, err := apps[0].Push(ctx, client.PushRequest{PhoneNumber: "254711000077", Amount: client.Shillings(77), Reference: "EARLY1"})
		if err != nil {
			t.Fatalf("push: got %v", err)
		}
		p, err := apps[2].Payment(ctx, push.PaymentID)
		if err != nil || p.Status != client.StatusSuccess || p.MpesaReceiptNumber != "UKEARLY001" {
			t.Fatalf("got %+v (error %v), want SUCCESS with receipt UKEARLY001", p, err)
		}
		// Delivered again to every replica, it changes nothing.
		for _, r := range rs {
			postTo(t, hc, r.url, "/api/mpesa/stk-callback/", successCallback(p.CheckoutRequestID, 77, "UKEARLY001", "254711000077"))
		}
		again := paymentOK(t, apps[0], p.ID)
		if !again.UpdatedAt.Equal(p.UpdatedAt) {
			t.Errorf("a repeated callback changed the payment: updated_at %v, want %v", again.UpdatedAt, p.UpdatedAt)
		}
	})

	t.Run("C2B confirmation sent to every replica at once is recorded once", func(t *testing.T) {
		conf := map[string]any{"TransactionType": "Pay Bill", "TransID": "UKC2BREP01", "TransTime": "20261129101500",
			"TransAmount": "50.00", "BusinessShortCode": "600000", "BillRefNumber": "REPC2B", "InvoiceNumber": "",
			"OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 149", "FirstName": "John"}
		var wg sync.WaitGroup
		for n := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if st := postTo(t, hc, rs[n%3].url, "/api/c2b/confirmation/", conf); st != 200 {
					t.Errorf("confirmation: got %d, want 200", st)
				}
			}()
		}
		wg.Wait()
		if ids := listIDs(t, apps[0], client.ListQuery{Reference: "REPC2B"}); len(ids) != 1 {
			t.Errorf("got %d payments with reference REPC2B (%v), want 1", len(ids), ids)
		}
	})
	if t.Failed() {
		for _, r := range rs {
			if strings.Contains(r.out.String(), "panic") {
				t.Errorf("replica %s panicked", r.url)
			}
		}
	}
}
