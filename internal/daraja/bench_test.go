package daraja_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// benchFixture reads testdata/daraja/name for a benchmark.
func benchFixture(b *testing.B, name string) []byte {
	b.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "daraja", name))
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkParseSTKCallback measures the parser every STK callback goes
// through, on Daraja's success and cancellation samples.
//
//	go test -run=^$ -bench=Parse -benchmem ./internal/daraja
func BenchmarkParseSTKCallback(b *testing.B) {
	for _, name := range []string{"stk-callback-success.json", "stk-callback-cancelled-1032.json"} {
		body := benchFixture(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := daraja.ParseSTKCallback(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseC2BNotification measures the C2B confirmation parser and
// the repeated-key check every confirmation also goes through.
func BenchmarkParseC2BNotification(b *testing.B) {
	body := benchFixture(b, "c2b-confirmation-v2-masked.json")
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := daraja.ParseC2BNotification(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("repeated-key", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if k, ok := daraja.RepeatedKey(body); ok {
				b.Fatalf("RepeatedKey: got %q, want none", k)
			}
		}
	})
}
