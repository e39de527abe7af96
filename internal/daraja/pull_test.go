package daraja_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

func TestParsePullResponseFixtures(t *testing.T) {
	tests := []struct {
		file string
		code string
		want []daraja.PullTransaction
	}{
		{"pull-query-response.json", daraja.PullOK, []daraja.PullTransaction{{
			TransactionID: "yzlyrEsRG1", Time: time.Date(2020, 8, 5, 10, 13, 0, 0, time.UTC), TimeText: "2020-08-05T10:13:00Z",
			MSISDN: "722000000", Sender: "UAT2", TransactionType: "c2b-pay-bill-debit", BillReference: "37207636392",
			Amount: lipa.Shillings(168), AmountText: "168.00", OrganizationName: "Daraja Pull API Test",
		}}},
		{"pull-query-response-no-records.json", daraja.PullNone, nil},
		{"pull-query-response-flat-list.json", daraja.PullOK, []daraja.PullTransaction{
			{TransactionID: "UJ51AB2CD3", Time: eat(2026, time.October, 5, 9, 41, 27).UTC(), TimeText: "2026-10-05 09:41:27",
				MSISDN: "2547 ***** 149", Sender: "JOHN", TransactionType: "c2b-buy-goods-debit",
				Amount: lipa.Amount(25050), AmountText: "250.50", OrganizationName: "Daraja Pull API Test"},
			{TransactionID: "UJ51AB2CD4", Time: eat(2026, time.October, 5, 9, 45, 2).UTC(), TimeText: "2026-10-05T09:45:02",
				MSISDN: "708374149", Sender: "JOHN", TransactionType: "c2b-pay-bill-debit", BillReference: "INV-9",
				Amount: lipa.Shillings(100), AmountText: "100", OrganizationName: "Daraja Pull API Test"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			resp, err := daraja.ParsePullResponse(readCallbackFixture(t, tt.file))
			if err != nil {
				t.Fatalf("ParsePullResponse: %v", err)
			}
			if resp.ResponseCode != tt.code || resp.ResponseRefID == "" {
				t.Errorf("got ResponseCode %q ResponseRefID %q, want %q and an ID", resp.ResponseCode, resp.ResponseRefID, tt.code)
			}
			if diff := cmp.Diff(tt.want, resp.Transactions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("transactions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePullResponseShapes(t *testing.T) {
	item := `{"transactionId":"UJ5A","TRXDATE":"2026-10-05 09:41","amount":"1"}`
	tests := []struct {
		name, body string
		want       []string
	}{
		{"list of lists", `{"ResponseCode":"1000","Response":[[` + item + `],[` + item + `]]}`, []string{"UJ5A", "UJ5A"}},
		{"one object", `{"ResponseCode":"1000","Response":` + item + `}`, []string{"UJ5A"}},
		{"as a string", `{"ResponseCode":"1001","Transaction":"[[]]"}`, nil},
		{"items without an ID skipped", `{"ResponseCode":"1000","Response":[{"amount":"1"},` + item + `,7,"x",null]}`, []string{"UJ5A"}},
		{"sandbox RequestID", `{"RequestID":"r-1","ResponseCode":"1000","Transactions":[` + item + `]}`, []string{"UJ5A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := daraja.ParsePullResponse([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePullResponse: %v", err)
			}
			var got []string
			for _, tx := range resp.Transactions {
				got = append(got, tx.TransactionID)
				if tx.Time.IsZero() {
					t.Errorf("trxDate %q: got no time", tx.TimeText)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := daraja.ParsePullResponse([]byte(`[1]`)); !errors.Is(err, daraja.ErrMalformed) {
		t.Errorf("a list: got %v, want ErrMalformed", err)
	}
}

func TestParsePullTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2020-08-05T10:13:00Z":      time.Date(2020, 8, 5, 10, 13, 0, 0, time.UTC),
		"2020-08-05T13:13:00+03:00": time.Date(2020, 8, 5, 10, 13, 0, 0, time.UTC),
		"2020-08-05T10:13:00":       eat(2020, time.August, 5, 10, 13, 0).UTC(),
		"2020-08-04 8:36:00":        eat(2020, time.August, 4, 8, 36, 0).UTC(),
		"2019-07-31 19:00":          eat(2019, time.July, 31, 19, 0, 0).UTC(),
		"20200805101300":            eat(2020, time.August, 5, 10, 13, 0).UTC(),
	} {
		got, err := daraja.ParsePullTime(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParsePullTime(%q): got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2020-13-05 10:00:00", "2020-08-16 10:10:000"} {
		if _, err := daraja.ParsePullTime(in); err == nil {
			t.Errorf("ParsePullTime(%q): got no error", in)
		}
	}
}

// TestPullWireBodies: the register and query bodies carry Daraja's names
// and the dates in Kenya time.
func TestPullWireBodies(t *testing.T) {
	var bodies []map[string]any
	record := func(answer string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var m map[string]any
			json.NewDecoder(r.Body).Decode(&m)
			bodies = append(bodies, m)
			serve(http.StatusOK, []byte(answer))(w, r)
		}
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /pulltransactions/v1/register": record(string(fixture(t, "pull-register-response.json"))),
		"POST /pulltransactions/v1/query":    record(string(fixture(t, "pull-query-response.json"))),
	})
	c := newClient(t, f.URL)
	if _, err := c.RegisterPull(t.Context(), daraja.PullRegisterRequest{ShortCode: "600000", NominatedNumber: "254708374149", CallBackURL: "https://example.com/pull/callback"}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2020, 8, 4, 5, 36, 0, 0, time.UTC) // 08:36 in Nairobi
	if _, err := c.PullTransactions(t.Context(), daraja.PullQueryRequest{ShortCode: "600000", Start: start, End: start.Add(12*24*time.Hour + 94*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"ShortCode": "600000", "RequestType": "Pull", "NominatedNumber": "254708374149", "CallBackURL": "https://example.com/pull/callback"},
		{"ShortCode": "600000", "StartDate": "2020-08-04 08:36:00", "EndDate": "2020-08-16 10:10:00", "OffSetValue": "0"},
	}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
	for i, name := range []string{"pull-register-request.json", "pull-query-request.json"} {
		var fx map[string]any
		json.Unmarshal(fixture(t, name), &fx)
		if diff := cmp.Diff(keys(fx), keys(bodies[i])); diff != "" {
			t.Errorf("keys of the body against %s (-fixture +got):\n%s", name, diff)
		}
	}
}

func TestPullAnswerErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  func(*testing.T, error)
	}{
		{"unknown ResponseCode", 200, `{"ResponseCode":"500.003.02","ResponseMessage":"Error Occurred: Spike Arrest Violation","Response":[[]]}`,
			wantAPIError("pull query", 200, "500.003.02", daraja.ReasonRateLimited, daraja.ClassRetryable)},
		{"error envelope", 400, `{"requestId":"r","errorCode":"400.001","errorMessage":"Invalid ShortCode"}`,
			wantAPIError("pull query", 400, "400.001", daraja.ReasonInvalidField, daraja.ClassConfiguration)},
		{"not a Pull answer", 200, `{"hello":"world"}`, wantBadResponse("pull query", 200, "application/json", daraja.ClassFinal)},
		{"HTML", 200, `<html></html>`, wantBadResponse("pull query", 200, "application/json", daraja.ClassFinal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"POST /pulltransactions/v1/query": serve(tt.status, []byte(tt.body))})
			_, err := newClient(t, f.URL).PullTransactions(t.Context(), daraja.PullQueryRequest{ShortCode: "600000", Start: time.Now(), End: time.Now()})
			tt.check(t, err)
		})
	}
}

func FuzzParsePullResponse(f *testing.F) {
	for _, b := range allDarajaFixtures(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"ResponseCode":"1000","Response":"[[{\"transactionId\":\"A\",\"amount\":\"1.5\"}]]"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := daraja.ParsePullResponse(body)
		if err != nil {
			if !errors.Is(err, daraja.ErrMalformed) {
				t.Fatalf("ParsePullResponse: got error %v, want one wrapping ErrMalformed", err)
			}
			return
		}
		for _, tx := range resp.Transactions {
			if tx.TransactionID == "" || tx.Amount < 0 {
				t.Fatalf("ParsePullResponse: got transaction %+v, want an ID and a non-negative amount", tx)
			}
			if !tx.Time.IsZero() && tx.Time.Location() != time.UTC {
				t.Fatalf("ParsePullResponse: got Time in %v, want UTC", tx.Time.Location())
			}
		}
	})
}

// keys returns a JSON object's keys, sorted.
func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
