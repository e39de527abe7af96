package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// crashWait bounds each wait of the crash test: for the process to answer,
// for the load to reach the kill point, for reconciliation to settle every
// payment. A failure deadline, never an assertion on duration.
const crashWait = 60 * time.Second

// syncBuffer is a bytes.Buffer safe for a process's output copier and the
// test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is one `lipa serve` process of the crash test.
type serveProc struct {
	url    string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, once exited is closed
}

// wait waits for the process to exit and returns cmd.Wait's result.
func (p *serveProc) wait() error {
	<-p.exited
	return p.err
}

// kill sends SIGKILL (no shutdown of any kind) and waits for the exit.
func (p *serveProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// startServeProc starts `lipa serve` with env on a free port and waits
// until /readyz answers 200. At cleanup a process still running is killed.
func startServeProc(t *testing.T, bin, dir string, env map[string]string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	p := &serveProc{url: "http://" + addr, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start lipa serve: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			p.wait()
		}
		if t.Failed() {
			t.Logf("lipa serve %s output:\n%s", p.url, p.out)
		}
	})
	ready := processClient(t, p.url, "", 10*time.Second)
	deadline := time.Now().Add(crashWait)
	for {
		if _, err := ready.Ready(context.Background()); err == nil {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("lipa serve exited before it was ready (%v):\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lipa serve %s: got no 200 from /readyz, want one:\n%s", p.url, p.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashRecord is the client's own record of what the service told it.
type crashRecord struct {
	mu           sync.Mutex
	amount       map[string]client.Amount // payment_id answered 200 → amount
	reference    map[string]string        // payment_id → reference
	order        []string                 // payment_ids in the order told
	success      map[string]bool          // payments seen SUCCESS
	claimed      map[string]bool          // claims answered 200
	claimUnknown map[string]bool          // claims sent whose answer never came
	queue        []string                 // payments to look at (again), oldest first
}

func (r *crashRecord) counts() (told, claimed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order), len(r.claimed)
}

// crashWorker pushes to fresh phones and claims payments it has seen
// settle, until stop is closed.
func crashWorker(c *client.Client, rec *crashRecord, stop <-chan struct{}, n int) {
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		amount := client.Shillings(int64(1 + (n*7919+i*31)%500))
		ref := freshRef()
		pushed, err := c.Push(ctx, client.PushRequest{PhoneNumber: freshPhone(), Amount: amount, Reference: ref})
		if err == nil {
			if id := pushed.PaymentID; id != "" {
				rec.mu.Lock()
				rec.amount[id], rec.reference[id] = amount, ref
				rec.order = append(rec.order, id)
				rec.queue = append(rec.queue, id)
				rec.mu.Unlock()
			}
		}

		// Look at the oldest payment not yet looked at and claim it once it
		// is SUCCESS.
		rec.mu.Lock()
		var id string
		if len(rec.queue) > 0 {
			id, rec.queue = rec.queue[0], rec.queue[1:]
		}
		rec.mu.Unlock()
		if id == "" {
			continue
		}
		p, err := c.Payment(ctx, id)
		if err != nil || p.Status == client.StatusPending {
			rec.mu.Lock()
			rec.queue = append(rec.queue, id) // look again later
			rec.mu.Unlock()
			continue
		}
		if p.Status != client.StatusSuccess {
			continue
		}
		rec.mu.Lock()
		rec.success[id] = true
		ref = rec.reference[id]
		rec.mu.Unlock()
		claim := client.ClaimRequest{PaymentID: id}
		if i%3 == 0 {
			claim = client.ClaimRequest{Reference: ref, Amount: p.Amount}
		}
		ans, err := c.Claim(ctx, claim)
		var le *client.Error
		rec.mu.Lock()
		switch {
		case err != nil && !errors.As(err, &le):
			rec.claimUnknown[id] = true // no answer came
		case err == nil && ans.PaymentID == id:
			rec.claimed[id] = true
		}
		rec.mu.Unlock()
	}
}

// TestCrashSafety drives a steady load of pushes, callbacks and claims
// against a real `lipa serve`, kills it with SIGKILL mid-way, restarts it on
// the same database, lets reconciliation run, and checks the service
// against the client's own record. Then it checks that SIGTERM lets a push
// in flight get its answer before the process exits 0.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lipa serve")
	}
	bin := buildLipa(t)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		dir := t.TempDir()
		env := map[string]string{
			"DATABASE_URL":                    databaseURL,
			"MPESA_ENVIRONMENT":               "simulator",
			"MPESA_ALLOW_TOKENLESS_CALLBACKS": "true",
			"MPESA_TIMEOUT":                   "2s",
			"LIPA_SIMULATOR_CALLBACK_DELAY":   "300ms",
			"LIPA_RECONCILE_AFTER":            "1s",
			"LIPA_PENDING_EXPIRY":             "8s",
			"LIPA_APP_RATE_LIMIT":             "0", // the load is the test's, not an abuse
			"LOG_FILE":                        filepath.Join(dir, "lipa.log"),
		}
		code, stdout, stderr := runCLI(t, env, "apps", "create", "shop", "--json")
		if code != 0 {
			t.Fatalf("lipa apps create: got exit code %d (stderr %q), want 0", code, stderr)
		}
		var created struct {
			APIKey string `json:"api_key"`
		}
		if err := json.Unmarshal([]byte(stdout), &created); err != nil || created.APIKey == "" {
			t.Fatalf("lipa apps create --json: got %q, want an api_key", stdout)
		}
		key := created.APIKey

		first := startServeProc(t, bin, dir, env)
		rec := &crashRecord{amount: map[string]client.Amount{}, reference: map[string]string{}, success: map[string]bool{},
			claimed: map[string]bool{}, claimUnknown: map[string]bool{}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for n := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashWorker(processClient(t, first.url, key, 10*time.Second), rec, stop, n)
			}()
		}
		deadline := time.Now().Add(crashWait)
		for {
			told, claimed := rec.counts()
			if told >= 30 && claimed >= 8 {
				break
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("load before the kill: got %d payments and %d claims, want at least 30 and 8", told, claimed)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Kill it mid-way, with requests in flight.
		if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		first.wait()
		close(stop)
		wg.Wait()
		if strings.Contains(first.out.String(), "panic") {
			t.Errorf("first lipa serve: got a panic in its output, want none:\n%s", first.out)
		}

		second := startServeProc(t, bin, dir, env)
		c := processClient(t, second.url, key, 10*time.Second)
		all := func(q client.ListQuery) []client.Payment {
			t.Helper()
			q.Limit = 200
			var out []client.Payment
			for p, err := range c.Payments(context.Background(), q) {
				if err != nil {
					t.Fatalf("GET /api/payments/ %+v: %v", q, err)
				}
				out = append(out, p)
			}
			return out
		}

		// Reconciliation settles what the crash left PENDING (their
		// callbacks died with the first process): by query or by expiry;
		// a push whose Daraja answer died with the process (no
		// CheckoutRequestID: the customer may have paid) goes to the review
		// queue at the expiry instead, and stays PENDING.
		orphans := func() map[string]bool {
			t.Helper()
			code, stdout, stderr := runCLI(t, env, "review", "list", "--json")
			if code != 0 {
				t.Fatalf("lipa review list --json: got exit code %d (stderr %q), want 0", code, stderr)
			}
			var items []struct {
				Reason    string `json:"reason"`
				PaymentID string `json:"payment_id"`
			}
			if err := json.Unmarshal([]byte(stdout), &items); err != nil {
				t.Fatalf("lipa review list --json: got %q: %v", stdout, err)
			}
			out := map[string]bool{}
			for _, it := range items {
				if it.Reason == "orphan_push" {
					out[it.PaymentID] = true
				}
			}
			return out
		}
		var held map[string]bool
		deadline = time.Now().Add(crashWait)
		for {
			held = orphans()
			var unsettled []client.Payment
			for _, p := range all(client.ListQuery{Status: client.StatusPending}) {
				if !held[p.ID] || p.CheckoutRequestID != "" {
					unsettled = append(unsettled, p)
				}
			}
			if len(unsettled) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the restart: got %d payments still PENDING and not held for review, want none (first: %v)", len(unsettled), unsettled[0])
			}
			time.Sleep(100 * time.Millisecond)
		}

		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, id := range rec.order {
			p := paymentOK(t, c, id)
			if p.Amount != rec.amount[id] {
				t.Errorf("payment %s: got amount %v, want %v as pushed", id, p.Amount, rec.amount[id])
			}
			if rec.success[id] && p.Status != client.StatusSuccess {
				t.Errorf("payment %s: got status %v, want SUCCESS as the client saw before the crash", id, p.Status)
			}
			if rec.claimed[id] && !p.Claimed {
				t.Errorf("payment %s: got claimed %v, want true: its claim was answered 200", id, p.Claimed)
			}
		}
		everything := all(client.ListQuery{})
		told := map[string]bool{}
		for _, id := range rec.order {
			told[id] = true
		}
		for _, p := range everything {
			id := p.ID
			if p.Status == client.StatusPending && !held[id] {
				t.Errorf("payment %s: got PENDING after reconciliation and not in the review queue, want SUCCESS or FAILED", id)
			}
			if p.Claimed && !rec.claimed[id] && !rec.claimUnknown[id] {
				t.Errorf("payment %s: got claimed, want unclaimed: the client never claimed it (told %v)", id, told[id])
			}
		}
		// Every callback the first process acknowledged (as the built-in
		// simulator logged it) is applied: the push it names paid.
		byCheckout := map[string]client.Payment{}
		for _, p := range everything {
			if p.CheckoutRequestID != "" {
				byCheckout[p.CheckoutRequestID] = p
			}
		}
		acked := crashAckedCallbacks(t, env["LOG_FILE"])
		if len(acked) == 0 {
			t.Errorf("LOG_FILE: got no callback acknowledged before the crash, want some")
		}
		for _, c := range acked {
			p, ok := byCheckout[c]
			if !ok || p.Status != client.StatusSuccess || p.MpesaReceiptNumber == "" {
				t.Errorf("callback for %s was acknowledged: got payment %+v, want it SUCCESS with its receipt", c, p)
			}
		}
		if n := len(all(client.ListQuery{Claimed: new(true)})); n < len(rec.claimed) || n > len(rec.claimed)+len(rec.claimUnknown) {
			t.Errorf("claimed payments: got %d, want from %d to %d", n, len(rec.claimed), len(rec.claimed)+len(rec.claimUnknown))
		}
		if _, err := c.Ready(context.Background()); err != nil {
			t.Errorf("/readyz after the restart: got %v, want 200", err)
		}
		t.Logf("%d payments told (%d seen SUCCESS), %d claims answered 200, %d claims unanswered, %d payments stored, %d callbacks acknowledged",
			len(rec.order), len(rec.success), len(rec.claimed), len(rec.claimUnknown), len(everything), len(acked))

		// SIGTERM drains: a push nobody answers is in flight; it still gets
		// its 504 before the process exits 0.
		answered := make(chan error, 1)
		drained := processClient(t, second.url, key, 30*time.Second)
		go func() {
			_, err := drained.Push(context.Background(), client.PushRequest{PhoneNumber: darajasim.PhoneNoAnswer, Amount: client.Shillings(10), Reference: freshRef()})
			answered <- err
		}()
		deadline = time.Now().Add(crashWait)
		for !crashLogHas(t, env["LOG_FILE"], "stk push fault injected", "no-answer") {
			if time.Now().After(deadline) {
				t.Fatalf("LOG_FILE: got no line of the simulator holding the push to %s, want one", darajasim.PhoneNoAnswer)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		if err := <-answered; !errors.As(err, new(*client.Error)) {
			t.Errorf("push in flight at SIGTERM: got error %v, want its answer", err)
		} else if le := err.(*client.Error); le.StatusCode != http.StatusGatewayTimeout || le.Code != "daraja_timeout" {
			t.Errorf("push in flight at SIGTERM: got %d %s, want 504 daraja_timeout", le.StatusCode, le.Code)
		}
		if err := second.wait(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Errorf("lipa serve after SIGTERM: got exit code %d, want 0", ee.ExitCode())
			} else {
				t.Errorf("lipa serve after SIGTERM: %v", err)
			}
		}
		if strings.Contains(second.out.String(), "panic") {
			t.Errorf("second lipa serve: got a panic in its output, want none:\n%s", second.out)
		}
	})
}

// crashLogHas reports whether a complete line of the JSON log at path has
// msg and a "fault" attribute equal to fault.
func crashLogHas(t *testing.T, path, msg, fault string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read LOG_FILE: %v", err)
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == msg && m["fault"] == fault {
			return true
		}
	}
	return false
}

// crashAckedCallbacks returns the CheckoutRequestIDs whose STK callback the
// built-in simulator delivered and saw answered 200, from the JSON log at
// path (a line cut short by SIGKILL is skipped).
func crashAckedCallbacks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read LOG_FILE: %v", err)
	}
	var out []string
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["component"] == "simulator" && m["msg"] == "stk callback delivered" && m["status"] == float64(200) {
			if c, _ := m["checkout_request_id"].(string); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}
