package daraja_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/darajasim"
)

// The initiator the simulator tests run as: the sandbox test credentials
// page's name and password (docs/daraja.md "Initiator credentials").
const (
	simInitiator                                 = "testapi"
	simPassword                      lipa.Secret = "Safaricom999!*!"
	simShortCode                                 = darajasim.SandboxShortCode
	resultPath                                   = "/api/reversal/result/tok-1/"
	timeoutPath                                  = "/api/reversal/timeout/tok-1/"
	statusResultPath                             = "/api/status/result/tok-1/"
	statusTimeoutPath                            = "/api/status/timeout/tok-1/"
	stkCallbackPathForTheseTests                 = "/api/stk/callback/tok-1/"
	waitForDelivery                              = 5 * time.Second
	ordinaryPayer                                = "254711000001"
	secondOrdinaryPayer                          = "254711000002"
	thirdOrdinaryPayer                           = "254711000003"
	initiatorAcceptedByAnyCredential             = "any-initiator"
)

// inbox is Lipa's side of the wire for these tests: a loopback server
// recording every POST (STK callbacks, Results, timeout notices) by path.
type inbox struct {
	URL string
	got chan posted
}

type posted struct {
	path string
	body []byte
}

func newInbox(t *testing.T) *inbox {
	t.Helper()
	in := &inbox{got: make(chan posted, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		in.got <- posted{r.URL.Path, b}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ResultCode":0,"ResultDesc":"Accepted"}`)
	}))
	t.Cleanup(srv.Close)
	in.URL = srv.URL
	return in
}

// next returns the next POST, failing the test when none comes in time.
func (in *inbox) next(t *testing.T) posted {
	t.Helper()
	select {
	case p := <-in.got:
		return p
	case <-time.After(waitForDelivery):
		t.Fatal("nothing was POSTed to the inbox in time")
		return posted{}
	}
}

// none fails if a POST is waiting.
func (in *inbox) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-in.got:
		t.Fatalf("inbox got an unexpected POST to %s: %s", p.path, p.body)
	default:
	}
}

// simRig is a simulator on loopback and a client with an initiator,
// encrypting with the simulator's certificate.
type simRig struct {
	sim    *darajasim.Server
	url    string
	client *daraja.Client
	in     *inbox
}

func newSimRig(t *testing.T, cfg darajasim.Config, mods ...func(*daraja.Config)) *simRig {
	t.Helper()
	sim := darajasim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(sim.Close)
	t.Cleanup(srv.Close)
	mods = append([]func(*daraja.Config){func(c *daraja.Config) {
		c.InitiatorName, c.InitiatorPassword, c.Certificate = simInitiator, simPassword, darajasim.Certificate()
	}}, mods...)
	return &simRig{sim: sim, url: srv.URL, client: newClient(t, srv.URL, mods...), in: newInbox(t)}
}

// pay makes a paid STK push from phone and returns its receipt, read from
// the callback.
func (r *simRig) pay(t *testing.T, phone string, amount int64) string {
	t.Helper()
	req := pushRequest()
	req.PhoneNumber, req.Amount, req.CallBackURL = phone, amount, r.in.URL+stkCallbackPathForTheseTests
	if _, err := r.client.STKPush(context.Background(), req); err != nil {
		t.Fatalf("STKPush from %s: %v", phone, err)
	}
	p := r.in.next(t)
	cb, err := daraja.ParseSTKCallback(p.body)
	if err != nil || cb.ResultCode != "0" || cb.MpesaReceiptNumber == "" {
		t.Fatalf("callback for the push from %s: got %+v, %v; want a paid callback with a receipt", phone, cb, err)
	}
	return cb.MpesaReceiptNumber
}

// waitReversed waits until the simulator has reversed receipt.
func (r *simRig) waitReversed(t *testing.T, receipt string) {
	t.Helper()
	deadline := time.Now().Add(waitForDelivery)
	for {
		if tx, _ := r.sim.TransactionByReceipt(receipt); tx.ReversedBy != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not reversed in time", receipt)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *simRig) reversal(receipt string, amount int64) daraja.ReversalRequest {
	return daraja.ReversalRequest{
		TransactionID: receipt, Amount: lipa.Shillings(amount), ReceiverParty: simShortCode,
		ResultURL: r.in.URL + resultPath, QueueTimeOutURL: r.in.URL + timeoutPath, Remarks: "Refund",
	}
}

func (r *simRig) status(receipt, conversation string) daraja.TransactionStatusRequest {
	return daraja.TransactionStatusRequest{
		TransactionID: receipt, OriginalConversationID: conversation, PartyA: simShortCode,
		ResultURL: r.in.URL + statusResultPath, QueueTimeOutURL: r.in.URL + statusTimeoutPath, Remarks: "Status",
	}
}

// result waits for the next POST, which must go to path, and parses it.
func (r *simRig) result(t *testing.T, path string, ack *daraja.Ack) *daraja.Result {
	t.Helper()
	p := r.in.next(t)
	if p.path != path {
		t.Fatalf("result POSTed to %s, want %s (body %s)", p.path, path, p.body)
	}
	res, err := daraja.ParseResult(p.body)
	if err != nil {
		t.Fatalf("ParseResult(%s): %v", p.body, err)
	}
	if res.ConversationID != ack.ConversationID || res.OriginatorConversationID != ack.OriginatorConversationID {
		t.Errorf("result IDs: got %q/%q, want the ack's %q/%q", res.ConversationID, res.OriginatorConversationID, ack.ConversationID, ack.OriginatorConversationID)
	}
	return res
}

func TestReverseAgainstSimulator(t *testing.T) {
	tests := []struct {
		name     string
		payer    string // "" reverses a receipt the simulator never issued
		wantCode string
		want     daraja.ResultReason
	}{
		{"success", ordinaryPayer, "0", daraja.ResultSucceeded},
		{"unknown receipt", "", daraja.ResultCodeInvalidOriginal, daraja.ResultNotFound},
		{"magic already reversed", darajasim.PhoneReversalAlreadyReversed, daraja.ResultCodeAlreadyReversed, daraja.ResultAlreadyReversed},
		{"magic invalid", darajasim.PhoneReversalInvalid, daraja.ResultCodeInvalidOriginal, daraja.ResultNotFound},
		{"magic initiator fails", darajasim.PhoneReversalInitiatorFails, daraja.ResultCodeInitiatorInvalid, daraja.ResultInitiatorRejected},
		{"magic locked", darajasim.PhoneReversalLocked, daraja.ResultCodeCredentialLocked, daraja.ResultCredentialLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newSimRig(t, darajasim.Config{Initiators: map[string]lipa.Secret{simInitiator: simPassword}})
			receipt := "UKA0000000"
			if tt.payer != "" {
				receipt = rig.pay(t, tt.payer, 250)
			}
			ack, err := rig.client.Reverse(context.Background(), rig.reversal(receipt, 250))
			if err != nil {
				t.Fatalf("Reverse: %v", err)
			}
			if ack.ResponseCode != "0" || !strings.HasPrefix(ack.ConversationID, "AG_") || ack.OriginatorConversationID == "" {
				t.Errorf("ack: got %+v, want ResponseCode 0 and both IDs", ack)
			}
			res := rig.result(t, resultPath, ack)
			if res.ResultCode != tt.wantCode || res.Reason() != tt.want {
				t.Fatalf("result: got code %q reason %q (%s), want %q %q", res.ResultCode, res.Reason(), res.ResultDesc, tt.wantCode, tt.want)
			}
			if tt.want != daraja.ResultSucceeded {
				if len(res.Parameters) != 0 {
					t.Errorf("failed result: got parameters %v, want none", res.Parameters)
				}
				return
			}
			d := res.Reversal()
			if d.OriginalTransactionID != receipt || d.Amount != lipa.Shillings(250) || d.Receipt == "" || d.Receipt == receipt ||
				d.CompletedAt.IsZero() || !strings.HasPrefix(d.CreditPartyPublicName, ordinaryPayer) {
				t.Errorf("reversal details: got %+v, want receipt %s reversed, 250 shillings, a new receipt", d, receipt)
			}
			// The same receipt again: already reversed.
			ack, err = rig.client.Reverse(context.Background(), rig.reversal(receipt, 250))
			if err != nil {
				t.Fatalf("second Reverse: %v", err)
			}
			if res := rig.result(t, resultPath, ack); res.Reason() != daraja.ResultAlreadyReversed {
				t.Errorf("second reversal: got %q %q, want R000001", res.ResultCode, res.ResultDesc)
			}
		})
	}
}

// TestReverseWithheldResult: the reversal is made but its Result never
// comes; Transaction Status by the request's OriginatorConversationID then
// finds the reversal.
func TestReverseWithheldResult(t *testing.T) {
	rig := newSimRig(t, darajasim.Config{})
	receipt := rig.pay(t, darajasim.PhoneReversalNoResult, 40)
	ack, err := rig.client.Reverse(context.Background(), rig.reversal(receipt, 40))
	if err != nil {
		t.Fatalf("Reverse: %v", err)
	}
	rig.waitReversed(t, receipt)
	ack2, err := rig.client.TransactionStatus(context.Background(), rig.status("", ack.OriginatorConversationID))
	if err != nil {
		t.Fatalf("TransactionStatus: %v", err)
	}
	res := rig.result(t, statusResultPath, ack2) // the reversal's own Result is never POSTed
	st := res.Status()
	if !res.Succeeded() || st.TransactionStatus != "Completed" || st.OriginatorConversationID != ack.OriginatorConversationID ||
		st.ConversationID != ack.ConversationID || st.Amount != lipa.Shillings(40) {
		t.Fatalf("status of the withheld reversal: got %q %+v, want Completed with the reversal's IDs and 40 shillings", res.ResultCode, st)
	}
	orig, ok := rig.sim.TransactionByReceipt(receipt)
	if !ok || orig.ReversedBy != st.ReceiptNo {
		t.Errorf("simulator log: got %+v, want %s reversed by %s", orig, receipt, st.ReceiptNo)
	}
	rig.sim.Close() // waits for anything still in flight
	rig.in.none(t)
}

// TestReverseQueueTimeout: the reversal expires in the queue: a notice goes
// to the QueueTimeOutURL, nothing is reversed, nothing goes to the ResultURL.
func TestReverseQueueTimeout(t *testing.T) {
	rig := newSimRig(t, darajasim.Config{})
	receipt := rig.pay(t, darajasim.PhoneReversalQueueTimeout, 40)
	ack, err := rig.client.Reverse(context.Background(), rig.reversal(receipt, 40))
	if err != nil {
		t.Fatalf("Reverse: %v", err)
	}
	res := rig.result(t, timeoutPath, ack)
	if res.Succeeded() || res.ResultCode != darajasim.ResultCodeQueueTimeout {
		t.Errorf("timeout notice: got %q %q, want the simulator's queue timeout code", res.ResultCode, res.ResultDesc)
	}
	if orig, _ := rig.sim.TransactionByReceipt(receipt); orig.ReversedBy != "" {
		t.Errorf("original after a queue timeout: got reversed by %s, want not reversed", orig.ReversedBy)
	}
}

func TestInitiatorCredentialsAgainstSimulator(t *testing.T) {
	tests := []struct {
		name   string
		cfg    darajasim.Config
		client func(*daraja.Config)
		want   daraja.ResultReason
	}{
		{"right password", darajasim.Config{Initiators: map[string]lipa.Secret{simInitiator: simPassword}}, nil, daraja.ResultNotFound},
		{"wrong password", darajasim.Config{Initiators: map[string]lipa.Secret{simInitiator: simPassword}},
			func(c *daraja.Config) { c.InitiatorPassword = "wrong" }, daraja.ResultInitiatorRejected},
		{"unknown initiator", darajasim.Config{Initiators: map[string]lipa.Secret{simInitiator: simPassword}},
			func(c *daraja.Config) { c.InitiatorName = "someone" }, daraja.ResultInitiatorRejected},
		{"any initiator accepted", darajasim.Config{},
			func(c *daraja.Config) { c.InitiatorName = initiatorAcceptedByAnyCredential }, daraja.ResultNotFound},
		{"Safaricom's certificate, unverifiable, accepted", darajasim.Config{Initiators: map[string]lipa.Secret{simInitiator: simPassword}},
			func(c *daraja.Config) { c.Certificate = daraja.SandboxCertificate() }, daraja.ResultNotFound},
		{"Safaricom's certificate refused when strict", darajasim.Config{StrictCredentials: true},
			func(c *daraja.Config) { c.Certificate = daraja.SandboxCertificate() }, daraja.ResultInitiatorRejected},
		{"magic invalid initiator", darajasim.Config{}, func(c *daraja.Config) { c.InitiatorName = darajasim.InitiatorInvalid }, daraja.ResultInitiatorRejected},
		{"magic locked initiator", darajasim.Config{}, func(c *daraja.Config) { c.InitiatorName = darajasim.InitiatorLocked }, daraja.ResultCredentialLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*daraja.Config)
			if tt.client != nil {
				mods = append(mods, tt.client)
			}
			rig := newSimRig(t, tt.cfg, mods...)
			// A status query for an unknown receipt: 2032 once the
			// credentials pass.
			ack, err := rig.client.TransactionStatus(context.Background(), rig.status("UKA0000000", ""))
			if err != nil {
				t.Fatalf("TransactionStatus: %v", err)
			}
			if res := rig.result(t, statusResultPath, ack); res.Reason() != tt.want {
				t.Errorf("got %q %q (%s), want %s", res.ResultCode, res.ResultDesc, res.Reason(), tt.want)
			}
		})
	}
}

func TestTransactionStatusAgainstSimulator(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "current shape"
		if legacy {
			name = "legacy spaced keys"
		}
		t.Run(name, func(t *testing.T) {
			rig := newSimRig(t, darajasim.Config{LegacyStatusResults: legacy})
			receipt := rig.pay(t, ordinaryPayer, 75)
			ack, err := rig.client.TransactionStatus(context.Background(), rig.status(receipt, ""))
			if err != nil {
				t.Fatalf("TransactionStatus: %v", err)
			}
			res := rig.result(t, statusResultPath, ack)
			st := res.Status()
			if !res.Succeeded() || st.ReceiptNo != receipt || st.TransactionStatus != "Completed" || st.Amount != lipa.Shillings(75) ||
				st.FinalisedTime.IsZero() || !strings.HasPrefix(st.DebitPartyName, ordinaryPayer) {
				t.Errorf("status of %s: got %q %+v, want Completed, 75 shillings, paid by %s", receipt, res.ResultCode, st, ordinaryPayer)
			}
			spaced := false
			for _, p := range res.Parameters {
				spaced = spaced || strings.Contains(p.Key, " ")
			}
			if spaced != legacy {
				t.Errorf("parameter keys with spaces: got %v, want %v (%v)", spaced, legacy, res.Parameters)
			}

			ack, err = rig.client.TransactionStatus(context.Background(), rig.status("UKA0000000", ""))
			if err != nil {
				t.Fatalf("TransactionStatus: %v", err)
			}
			if res := rig.result(t, statusResultPath, ack); res.ResultCode != daraja.ResultCodeReceiptNotFound || res.Reason() != daraja.ResultNotFound {
				t.Errorf("unknown receipt: got %q %q, want 2032", res.ResultCode, res.ResultDesc)
			}
		})
	}
}

func TestInitiatorCallsWithoutInitiator(t *testing.T) {
	sim := darajasim.New(darajasim.Config{})
	srv := httptest.NewServer(sim)
	t.Cleanup(sim.Close)
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	if c.HasInitiator() {
		t.Fatal("HasInitiator: got true, want false")
	}
	_, err := c.Reverse(context.Background(), daraja.ReversalRequest{TransactionID: "UKA0000000"})
	if !errors.Is(err, daraja.ErrNoInitiator) {
		t.Errorf("Reverse: got %v, want ErrNoInitiator", err)
	}
	_, err = c.TransactionStatus(context.Background(), daraja.TransactionStatusRequest{TransactionID: "UKA0000000"})
	if !errors.Is(err, daraja.ErrNoInitiator) {
		t.Errorf("TransactionStatus: got %v, want ErrNoInitiator", err)
	}
}

// TestInitiatorRefusalsAgainstSimulator: a request Daraja refuses at once
// is an *APIError classified by the one table.
func TestInitiatorRefusalsAgainstSimulator(t *testing.T) {
	rig := newSimRig(t, darajasim.Config{})
	good := rig.reversal("UKA0000000", 10)
	tests := []struct {
		name      string
		call      func() error
		field     string
		wantClass daraja.Class
	}{
		{"reversal of a malformed receipt", func() error {
			r := good
			r.TransactionID = "not-a-receipt"
			_, err := rig.client.Reverse(context.Background(), r)
			return err
		}, "TransactionID", daraja.ClassFinal},
		{"reversal with a refused word in its ResultURL", func() error {
			r := good
			r.ResultURL = rig.in.URL + "/mpesa/reversal/result/"
			_, err := rig.client.Reverse(context.Background(), r)
			return err
		}, "ResultURL", daraja.ClassConfiguration},
		{"reversal without Remarks", func() error {
			r := good
			r.Remarks = ""
			_, err := rig.client.Reverse(context.Background(), r)
			return err
		}, "Remarks", daraja.ClassFinal},
		{"status with a refused word in its QueueTimeOutURL", func() error {
			r := rig.status("UKA0000000", "")
			r.QueueTimeOutURL = rig.in.URL + "/api/query/timeout/"
			_, err := rig.client.TransactionStatus(context.Background(), r)
			return err
		}, "QueueTimeOutURL", daraja.ClassConfiguration},
		{"status of a malformed PartyA", func() error {
			r := rig.status("UKA0000000", "")
			r.PartyA = "12"
			_, err := rig.client.TransactionStatus(context.Background(), r)
			return err
		}, "PartyA", daraja.ClassFinal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apiErr *daraja.APIError
			err := tt.call()
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != "400.002.02" || apiErr.Reason() != daraja.ReasonInvalidField ||
				apiErr.Field() != tt.field || apiErr.Class() != tt.wantClass {
				t.Fatalf("got %v, want a 400.002.02 APIError for field %s, class %s", err, tt.field, tt.wantClass)
			}
		})
	}
}

func TestPullAgainstSimulator(t *testing.T) {
	for _, excludeSTK := range []bool{false, true} {
		name := "STK payments included"
		if excludeSTK {
			name = "STK payments excluded"
		}
		t.Run(name, func(t *testing.T) {
			rig := newSimRig(t, darajasim.Config{PullExcludesSTK: excludeSTK, PullPageSize: 2})
			ctx := context.Background()
			start := time.Now().Add(-time.Hour)
			query := func(offset int) *daraja.PullQueryResponse {
				t.Helper()
				resp, err := rig.client.PullTransactions(ctx, daraja.PullQueryRequest{ShortCode: simShortCode, Start: start, End: time.Now().Add(time.Minute), Offset: offset})
				if err != nil {
					t.Fatalf("PullTransactions offset %d: %v", offset, err)
				}
				return resp
			}
			// Before registration: no transactions, not an error.
			if resp := query(0); resp.ResponseCode != daraja.PullNone || len(resp.Transactions) != 0 {
				t.Fatalf("before registration: got %q with %d transactions, want 1001 and none", resp.ResponseCode, len(resp.Transactions))
			}
			reg := daraja.PullRegisterRequest{ShortCode: simShortCode, NominatedNumber: "254708374149", CallBackURL: rig.in.URL + "/api/pull/callback/tok-1/"}
			if r, err := rig.client.RegisterPull(ctx, reg); err != nil || r.ResponseStatus != daraja.PullOK || r.AlreadyRegistered() {
				t.Fatalf("RegisterPull: got %+v, %v; want 1000", r, err)
			}
			if r, err := rig.client.RegisterPull(ctx, reg); err != nil || !r.AlreadyRegistered() {
				t.Fatalf("RegisterPull again: got %+v, %v; want 1001, already registered", r, err)
			}

			stkReceipt := rig.pay(t, secondOrdinaryPayer, 30)
			c2b, err := rig.sim.PayC2B(ctx, darajasim.C2BPayment{ShortCode: simShortCode, CommandID: darajasim.CommandPayBill,
				Amount: 55, MSISDN: thirdOrdinaryPayer, BillRefNumber: "PULL1", NoConfirmation: true})
			if err != nil {
				t.Fatalf("PayC2B: %v", err)
			}
			rig.pay(t, ordinaryPayer, 20)
			// A reversal is not a C2B transaction: Pull leaves it out.
			ack, err := rig.client.Reverse(ctx, rig.reversal(stkReceipt, 30))
			if err != nil {
				t.Fatalf("Reverse: %v", err)
			}
			rig.result(t, resultPath, ack)

			var got []daraja.PullTransaction
			for offset := 0; ; {
				page := query(offset)
				if len(page.Transactions) > 2 {
					t.Fatalf("page at %d: got %d transactions, want at most PullPageSize 2", offset, len(page.Transactions))
				}
				if len(page.Transactions) == 0 {
					if page.ResponseCode != daraja.PullNone {
						t.Errorf("empty page: got ResponseCode %q, want 1001", page.ResponseCode)
					}
					break
				}
				got = append(got, page.Transactions...)
				offset += len(page.Transactions)
			}
			wantReceipts := []string{stkReceipt, c2b}
			if excludeSTK {
				wantReceipts = []string{c2b}
			}
			var receipts []string
			for _, tx := range got {
				receipts = append(receipts, tx.TransactionID)
			}
			if excludeSTK && len(got) != 1 || !excludeSTK && len(got) != 3 {
				t.Fatalf("pulled %v, want %d transactions starting %v", receipts, map[bool]int{true: 1, false: 3}[excludeSTK], wantReceipts)
			}
			for i, r := range wantReceipts {
				if receipts[i] != r {
					t.Errorf("pulled %v, want them in order starting %v", receipts, wantReceipts)
				}
			}
			for _, tx := range got {
				if tx.TransactionID != c2b {
					continue
				}
				if tx.Amount != lipa.Shillings(55) || tx.BillReference != "PULL1" || tx.TransactionType != "c2b-pay-bill-debit" ||
					tx.Time.IsZero() || tx.MSISDN != strings.TrimPrefix(thirdOrdinaryPayer, "254") {
					t.Errorf("pulled C2B payment: got %+v, want 55 shillings, PULL1, paybill, the payer without 254", tx)
				}
				if p, err := lipa.ParsePhone(tx.MSISDN); err != nil || string(p) != thirdOrdinaryPayer {
					t.Errorf("pulled MSISDN %q: ParsePhone got %q, %v; want %s", tx.MSISDN, p, err, thirdOrdinaryPayer)
				}
			}
			// A window that ends before the payments: none.
			resp, err := rig.client.PullTransactions(ctx, daraja.PullQueryRequest{ShortCode: simShortCode, Start: start, End: start.Add(time.Minute)})
			if err != nil || len(resp.Transactions) != 0 {
				t.Errorf("earlier window: got %+v, %v; want no transactions", resp, err)
			}
		})
	}
}

func TestPullRefusalsAgainstSimulator(t *testing.T) {
	rig := newSimRig(t, darajasim.Config{})
	ctx := context.Background()
	_, err := rig.client.PullTransactions(ctx, daraja.PullQueryRequest{ShortCode: "12", Start: time.Now(), End: time.Now()})
	var apiErr *daraja.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != "400.001" || apiErr.Field() != "ShortCode" || apiErr.Class() != daraja.ClassConfiguration {
		t.Errorf("invalid shortcode: got %v, want 400.001 Invalid ShortCode, a configuration error", err)
	}
	_, err = rig.client.PullTransactions(ctx, daraja.PullQueryRequest{ShortCode: simShortCode, Start: time.Now(), End: time.Now().Add(-time.Hour)})
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("end before start: got %v, want a local error, nothing sent", err)
	}
	// The token expires: Pull's own 401.001 refusal makes the client fetch
	// a new one once.
	if _, err := rig.client.Token(ctx); err != nil {
		t.Fatal(err)
	}
	rig.sim.RevokeTokens()
	if _, err := rig.client.RegisterPull(ctx, daraja.PullRegisterRequest{ShortCode: simShortCode, NominatedNumber: "0708374149", CallBackURL: rig.in.URL + "/api/pull/"}); err != nil {
		t.Errorf("RegisterPull after the token was revoked: got %v, want it refreshed and retried", err)
	}
}
