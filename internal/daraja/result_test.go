package daraja_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestParseResultFixtures reads every initiator Result fixture: Reversal,
// Transaction Status, and the B2C and Account Balance ones whose envelope is
// the same.
func TestParseResultFixtures(t *testing.T) {
	tests := []struct {
		file               string
		code, conversation string
		reason             daraja.ResultReason
		transactionID      string
		params, references int
		check              func(*testing.T, *daraja.Result)
	}{
		{file: "reversal-result-success.json", code: "0", conversation: "AG_20211114_201018edbbf9f1582eaa",
			reason: daraja.ResultSucceeded, transactionID: "SKE52PAWR9", params: 7, references: 1,
			check: func(t *testing.T, r *daraja.Result) {
				want := daraja.ReversalDetails{
					Receipt: "SKE52PAWR9", OriginalTransactionID: "SKC82PACB8", Amount: lipa.Shillings(1), Charge: 0,
					CompletedAt:           eat(2021, time.November, 14, 13, 27, 11).UTC(),
					CreditPartyPublicName: "254708374149 - John Doe", DebitPartyPublicName: "600992 - Safaricom Daraja 992",
					DebitAccountBalance: "Utility Account|KES|7722179.62|7722179.62|0.00|0.00",
				}
				if diff := cmp.Diff(want, r.Reversal()); diff != "" {
					t.Errorf("Reversal() (-want +got):\n%s", diff)
				}
				if v, _ := r.Param("Amount"); v != "1.00" {
					t.Errorf("Param(Amount): got %q, want the number's text 1.00", v)
				}
			}},
		{file: "reversal-result-invalid-R000002.json", code: "R000002", conversation: "AG_20211114_2010573069aefb6b625a",
			reason: daraja.ResultNotFound, transactionID: "SKE0000000", params: 0, references: 1},
		{file: "transaction-status-result.json", code: "0", conversation: "AG_20180223_0000493344ae97d86f75",
			reason: daraja.ResultSucceeded, transactionID: "MBN0000000", params: 13, references: 1,
			check: func(t *testing.T, r *daraja.Result) {
				st := r.Status()
				want := daraja.StatusDetails{
					ReceiptNo: "MBN31H462N", TransactionStatus: "Completed", Amount: lipa.Shillings(300),
					InitiatedTime: eat(2018, time.February, 23, 5, 41, 12).UTC(), FinalisedTime: eat(2018, time.February, 23, 5, 41, 12).UTC(),
					DebitPartyName: "600310 - Safaricom333", DebitPartyNames: []string{"600310 - Safaricom333", "254708374149 - John Doe"},
					ReasonType:               "Business Payment to Customer via API",
					OriginatorConversationID: "3211-416020-3", ConversationID: "AG_20180223_000041b09c22e613d6c9",
				}
				if diff := cmp.Diff(want, st); diff != "" {
					t.Errorf("Status() (-want +got):\n%s", diff)
				}
				if r.ReferenceData[0].Key != "Occasion" || r.ReferenceData[0].HasValue {
					t.Errorf("ReferenceData: got %+v, want Occasion without a Value", r.ReferenceData)
				}
			}},
		{file: "transaction-status-result-legacy-spaced-keys.json", code: "0", conversation: "AG_20170727_000059c52529a8e080bd",
			reason: daraja.ResultSucceeded, transactionID: "LGR0000000", params: 13, references: 1,
			check: func(t *testing.T, r *daraja.Result) {
				st := r.Status()
				if st.ReceiptNo != "LGR919G2AV" || st.ConversationID != "AG_20170727_00004492b1b6d0078fbe" ||
					st.OriginatorConversationID != "19455-773836-1" || st.Amount != lipa.Shillings(10) ||
					st.FinalisedTime != eat(2017, time.July, 27, 10, 14, 15).UTC() || st.CreditPartyName != "254708374149 - John Doe" {
					t.Errorf("Status() of the 2017 body: got %+v", st)
				}
				if v, ok := r.Param("TransactionReason"); ok || v != "" {
					t.Errorf("Param(TransactionReason): got %q, %v; want no value", v, ok)
				}
			}},
		{file: "transaction-status-result-not-found-2032.json", code: "2032", conversation: "AG_20261006_2010a1b2c3d4e5f6a7b8",
			reason: daraja.ResultNotFound, transactionID: "UJ60000000", params: 0, references: 1},
		{file: "b2c-result-failure-2001.json", code: "2001", conversation: "AG_20240707_201062f6f6f5804f7a33",
			reason: daraja.ResultInitiatorRejected, transactionID: "SG722NMVXQ", params: 0, references: 1},
		{file: "b2c-result-locked-8006.json", code: "8006", conversation: "AG_20260930_2010c3d4e5f6a7b8c9d0",
			reason: daraja.ResultCredentialLocked, transactionID: "XXXXXXXXXX", params: 0, references: 1},
		{file: "account-balance-result-locked-8006.json", code: "8006", conversation: "AG_20261006_2010b2c3d4e5f6a7b8c9",
			reason: daraja.ResultCredentialLocked, transactionID: "XXXXXXXXXX", params: 3, references: 1,
			check: func(t *testing.T, r *daraja.Result) {
				if v, _ := r.Param("ErrorMsg"); v != "API Password is locked. " {
					t.Errorf("Param(ErrorMsg): got %q, want the text with its trailing space", v)
				}
			}},
		{file: "account-balance-result.json", code: "0", reason: daraja.ResultSucceeded},
		{file: "b2c-result-success.json", code: "0", reason: daraja.ResultSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := daraja.ParseResult(readCallbackFixture(t, tt.file))
			if err != nil {
				t.Fatalf("ParseResult: %v", err)
			}
			if r.ResultCode != tt.code || r.Reason() != tt.reason || r.Succeeded() != (tt.reason == daraja.ResultSucceeded) || !r.Final() {
				t.Errorf("got code %q reason %q succeeded %v final %v, want %q %q", r.ResultCode, r.Reason(), r.Succeeded(), r.Final(), tt.code, tt.reason)
			}
			if tt.conversation != "" && (r.ConversationID != tt.conversation || r.TransactionID != tt.transactionID ||
				len(r.Parameters) != tt.params || len(r.ReferenceData) != tt.references) {
				t.Errorf("got ConversationID %q TransactionID %q, %d parameters, %d reference items; want %q %q %d %d",
					r.ConversationID, r.TransactionID, len(r.Parameters), len(r.ReferenceData), tt.conversation, tt.transactionID, tt.params, tt.references)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseResultLenient(t *testing.T) {
	tests := []struct {
		name string
		body string
		want daraja.Result
	}{
		{"string codes and types", `{"Result":{"ResultType":"1","ResultCode":"0","OriginatorConversationID":"o-1"}}`,
			daraja.Result{ResultType: "1", ResultCode: "0", OriginatorConversationID: "o-1"}},
		{"one parameter as an object, reference items as an array",
			`{"Result":{"ResultCode":0,"ConversationID":"AG_1","ResultParameters":{"ResultParameter":{"Key":"Amount","Value":5}},` +
				`"ReferenceData":{"ReferenceItem":[{"Key":"Occasion","Value":"x"},{"Key":"QueueTimeoutURL"}]}}}`,
			daraja.Result{ResultCode: "0", ConversationID: "AG_1",
				Parameters:    []daraja.ResultParameter{{Key: "Amount", Value: "5", HasValue: true}},
				ReferenceData: []daraja.ResultParameter{{Key: "Occasion", Value: "x", HasValue: true}, {Key: "QueueTimeoutURL"}}}},
		{"items without keys, null values, unknown fields",
			`{"Result":{"ResultCode":"R000001","ConversationID":"AG_2","Extra":{"a":1},"ResultParameters":{"ResultParameter":[{"Value":1},{"Key":"A","Value":null},{"Key":"B","Value":{"x":1}},"junk"]}}}`,
			daraja.Result{ResultCode: "R000001", ConversationID: "AG_2",
				Parameters: []daraja.ResultParameter{{Key: "A"}, {Key: "B"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := daraja.ParseResult([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseResult: %v", err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResultMalformed(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `{"Body":{}}`, `{"Result":null}`, `{"Result":{"ConversationID":"AG_1"}}`,
		`{"Result":{"ResultCode":0}}`, `{"Result":{"ResultCode":0,"ConversationID":"AG_1"}} trailing`,
		`{"Result":{"ResultCode":{},"ConversationID":"AG_1"}}`,
	} {
		if r, err := daraja.ParseResult([]byte(body)); !errors.Is(err, daraja.ErrMalformed) {
			t.Errorf("ParseResult(%q): got %+v, %v; want an error wrapping ErrMalformed", body, r, err)
		}
	}
}

func FuzzParseResult(f *testing.F) {
	for _, b := range allDarajaFixtures(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"Result":{"ResultCode":"R000002","ConversationID":"AG_1","ResultParameters":{"ResultParameter":{"Key":"K"}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := daraja.ParseResult(body)
		if err != nil {
			if !errors.Is(err, daraja.ErrMalformed) {
				t.Fatalf("ParseResult: got error %v, want one wrapping ErrMalformed", err)
			}
			return
		}
		if r.ResultCode == "" || (r.ConversationID == "" && r.OriginatorConversationID == "") {
			t.Fatalf("ParseResult: got %+v, want a ResultCode and an ID", r)
		}
		for _, p := range append(r.Parameters, r.ReferenceData...) {
			if p.Key == "" || (!p.HasValue && p.Value != "") {
				t.Fatalf("ParseResult: got parameter %+v, want a key, and no value unless HasValue", p)
			}
		}
		_ = r.Reason()
		if d := r.Status(); !d.FinalisedTime.IsZero() && d.FinalisedTime.Location() != time.UTC {
			t.Fatalf("Status: got FinalisedTime in %v, want UTC", d.FinalisedTime.Location())
		}
		if d := r.Reversal(); d.Amount < 0 {
			t.Fatalf("Reversal: got Amount %d, want >= 0", d.Amount)
		}
	})
}
