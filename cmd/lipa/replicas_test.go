package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
		for {
			resp, err := http.Get(r.url + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s did not become healthy:\n%s", r.url, r.out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return rs
}

func call(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
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
		st, _ := call(t, "POST", target+"/api/mpesa/stk-callback/", "", successCallback(ans.CheckoutRequestID, 77, "UKEARLY001", "254711000077"))
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

	t.Run("callback on another replica settles the push", func(t *testing.T) {
		var ids []string
		for i := range 10 {
			a, b := rs[i%3], rs[(i+1)%3]
			phone := fmt.Sprintf("2547110%05d", i)
			st, push := call(t, "POST", a.url+"/api/stk-push/", key, map[string]any{"phone_number": phone, "amount": 10 + i, "reference": fmt.Sprintf("REP%d", i)})
			if st != 200 {
				t.Fatalf("push on %s: got %d %v", a.url, st, push)
			}
			cb := successCallback(push["checkout_request_id"].(string), 10+i, fmt.Sprintf("UKREP%05d", i), phone)
			if st, _ := call(t, "POST", b.url+"/api/mpesa/stk-callback/", "", cb); st != 200 {
				t.Fatalf("callback on %s: got %d", b.url, st)
			}
			ids = append(ids, push["payment_id"].(string))
		}
		for i, id := range ids {
			st, p := call(t, "GET", rs[(i+2)%3].url+"/api/payments/"+id+"/", key, nil)
			if st != 200 || p["status"] != "SUCCESS" {
				t.Fatalf("payment %s: got %d %v, want SUCCESS", id, st, p)
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
				st, _ := call(t, "POST", rs[n%3].url+"/api/payments/claim/", key, map[string]any{"payment_id": id})
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
		st, push := call(t, "POST", rs[0].url+"/api/stk-push/", key, map[string]any{"phone_number": "254711000077", "amount": 77, "reference": "EARLY1"})
		if st != 200 {
			t.Fatalf("push: got %d %v", st, push)
		}
		st, p := call(t, "GET", rs[2].url+"/api/payments/"+push["payment_id"].(string)+"/", key, nil)
		if st != 200 || p["status"] != "SUCCESS" || p["mpesa_receipt_number"] != "UKEARLY001" {
			t.Fatalf("got %d %v, want SUCCESS with receipt UKEARLY001", st, p)
		}
		// Delivered again to every replica, it changes nothing.
		for _, r := range rs {
			call(t, "POST", r.url+"/api/mpesa/stk-callback/", "", successCallback(p["checkout_request_id"].(string), 77, "UKEARLY001", "254711000077"))
		}
		_, again := call(t, "GET", rs[0].url+"/api/payments/"+p["id"].(string)+"/", key, nil)
		if again["updated_at"] != p["updated_at"] {
			t.Errorf("a repeated callback changed the payment: updated_at %v, want %v", again["updated_at"], p["updated_at"])
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
				if st, _ := call(t, "POST", rs[n%3].url+"/api/c2b/confirmation/", "", conf); st != 200 {
					t.Errorf("confirmation: got %d, want 200", st)
				}
			}()
		}
		wg.Wait()
		st, list := call(t, "GET", rs[0].url+"/api/payments/?reference=REPC2B", key, nil)
		if n := len(list["payments"].([]any)); st != 200 || n != 1 {
			t.Errorf("got %d payments with reference REPC2B (status %d), want 1", n, st)
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
