package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
)

// darajaFixtures is where the repository keeps Daraja's payloads.
const darajaFixtures = "../../testdata/daraja"

// fixtureFiles returns the fixture files matching pattern (a glob in
// darajaFixtures), failing the test when there are none.
func fixtureFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(darajaFixtures, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures %s: got %d files (err %v), want some", pattern, len(files), err)
	}
	return files
}

// readJSONFixture reads a fixture as a JSON object, numbers kept as
// json.Number so that they are written back exactly as they were.
func readJSONFixture(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return m
}

// encodeJSON writes a decoded fixture back as JSON.
func encodeJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal fixture: %v", err)
	}
	return b
}

// stkFixture is an STK callback fixture (Body.stkCallback), decoded for
// rewriting.
type stkFixture struct {
	name string
	doc  map[string]any
}

func loadSTKFixture(t *testing.T, path string) *stkFixture {
	t.Helper()
	f := &stkFixture{name: filepath.Base(path), doc: readJSONFixture(t, path)}
	if f.callback() == nil {
		t.Fatalf("fixture %s: no Body.stkCallback object", f.name)
	}
	return f
}

func (f *stkFixture) callback() map[string]any {
	cb, _ := jsonAt(f.doc, "Body", "stkCallback").(map[string]any)
	return cb
}

// resultCode returns ResultCode as text ("0", "1032").
func (f *stkFixture) resultCode() string {
	switch v := f.callback()["ResultCode"].(type) {
	case json.Number:
		return v.String()
	case string:
		return v
	}
	return ""
}

// item returns the CallbackMetadata item's Value, or nil.
func (f *stkFixture) item(name string) any {
	md, _ := f.callback()["CallbackMetadata"].(map[string]any)
	items, _ := md["Item"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["Name"] == name {
			return m["Value"]
		}
	}
	return nil
}

// setItem replaces the Value of the named CallbackMetadata item, if there
// is one.
func (f *stkFixture) setItem(name string, v any) {
	md, _ := f.callback()["CallbackMetadata"].(map[string]any)
	items, _ := md["Item"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["Name"] == name {
			m["Value"] = v
		}
	}
}

// forPush points the fixture at a push: CheckoutRequestID and
// MerchantRequestID become the push's, and PhoneNumber the push's phone,
// keeping its JSON type (number or string).
func (f *stkFixture) forPush(push *client.PushResult, phone string) *stkFixture {
	cb := f.callback()
	cb["CheckoutRequestID"] = push.CheckoutRequestID
	cb["MerchantRequestID"] = push.MerchantRequestID
	switch f.item("PhoneNumber").(type) {
	case json.Number:
		f.setItem("PhoneNumber", json.Number(phone))
	case string:
		f.setItem("PhoneNumber", phone)
	}
	return f
}

// amount returns the whole shillings of the fixture's Amount item, or 1 when
// it has none (failure callbacks carry no metadata).
func (f *stkFixture) amount(t *testing.T) int64 {
	t.Helper()
	v, ok := f.item("Amount").(json.Number)
	if !ok {
		return 1
	}
	a, err := strconv.ParseFloat(v.String(), 64)
	if err != nil || a != float64(int64(a)) {
		t.Fatalf("fixture %s: Amount %v is not whole shillings", f.name, v)
	}
	return int64(a)
}

// receipt returns the MpesaReceiptNumber item.
func (f *stkFixture) receipt() string {
	s, _ := f.item("MpesaReceiptNumber").(string)
	return s
}

// transactionDateUTC returns the TransactionDate item (Kenya time,
// yyyyMMddHHmmss) as RFC 3339 in UTC, or nil when there is none.
func (f *stkFixture) transactionDateUTC(t *testing.T) any {
	t.Helper()
	v := f.item("TransactionDate")
	if v == nil {
		return nil
	}
	return kenyaToUTC(t, string(v.(json.Number)))
}

func (f *stkFixture) bytes(t *testing.T) []byte {
	t.Helper()
	return encodeJSON(t, f.doc)
}

// kenyaToUTC reads Daraja's yyyyMMddHHmmss in Kenya time (UTC+3) and writes
// it as RFC 3339 in UTC: three hours earlier.
func kenyaToUTC(t *testing.T, s string) string {
	t.Helper()
	d, err := time.Parse("20060102150405", s)
	if err != nil {
		t.Fatalf("Daraja time %q: %v", s, err)
	}
	return d.Add(-3 * time.Hour).Format(time.RFC3339)
}

// failureReasons maps STK ResultCodes to the failure_reason the issue asks
// for. A fixture whose code is missing here fails the test, so a new
// fixture gets an explicit expectation.
var failureReasons = map[string]string{
	"1032": "cancelled_by_user",
	"1031": "cancelled_by_user",
	"1":    "insufficient_funds",
	"2001": "wrong_pin",
	"1037": "customer_unreachable",
	"1036": "customer_unreachable",
	"1019": "expired",
	"1001": "subscriber_busy",
}

// stkAck is the acknowledgement Safaricom must get for every readable STK
// callback.
var stkAck = map[string]any{"ResultCode": float64(0), "ResultDesc": "Accepted"}

// c2bAck is the acknowledgement of a C2B confirmation.
var c2bAckBody = map[string]any{"ResultCode": float64(0), "ResultDesc": "Success"}
