package lipa_test

import (
	"testing"

	"github.com/lipa-gateway/lipa"
)

// BenchmarkParsePhone measures phone parsing in the forms apps send.
//
//	go test -run=^$ -bench=Parse -benchmem .
func BenchmarkParsePhone(b *testing.B) {
	for _, in := range []string{"254708374149", "0708374149", "+254 708 374 149"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lipa.ParsePhone(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAmount measures amount parsing: C2B's TransAmount and an
// app's claim amount (ParseAmount), and an STK push's amount
// (ParseSTKAmount).
func BenchmarkParseAmount(b *testing.B) {
	for _, in := range []string{"10", "100.50", "49197.00"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lipa.ParseAmount(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("stk/10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lipa.ParseSTKAmount("10"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
