package daraja_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/lipa-gateway/lipa/internal/daraja"
)

// TestComparePhone: a reported phone number matches the expected one when
// every digit it shows agrees with the digit at its place; a mask that
// shows too little of the number's end hides it.
func TestComparePhone(t *testing.T) {
	const want = "254708374149"
	sum := sha256.Sum256([]byte(want))
	other := sha256.Sum256([]byte("254708374148"))
	tests := []struct {
		reported string
		check    daraja.PhoneCheck
	}{
		{"254708374149", daraja.PhoneMatches},
		{"0708374149", daraja.PhoneMatches},
		{"+254 708 374 149", daraja.PhoneMatches},
		{"254708374148", daraja.PhoneDiffers},
		{"2547083741", daraja.PhoneDiffers},
		{"12345", daraja.PhoneDiffers},
		{"2547****4149", daraja.PhoneMatches},
		{"2547****0000", daraja.PhoneDiffers},
		{"2541****4149", daraja.PhoneDiffers},
		{"2547 ***** 149", daraja.PhoneMatches},
		{"2547 ***** 148", daraja.PhoneDiffers},
		{"25470****149", daraja.PhoneMatches},
		{"25471****149", daraja.PhoneDiffers},
		{"0708***149", daraja.PhoneMatches},
		{"0711***149", daraja.PhoneDiffers},
		{"2547XXXXX149", daraja.PhoneMatches},
		{"***149", daraja.PhoneMatches},
		{"***4148", daraja.PhoneDiffers},
		{"2547********", daraja.PhoneHidden},
		{"2547*******49", daraja.PhoneHidden},
		{"************", daraja.PhoneHidden},
		{"****", daraja.PhoneHidden},
		{"", daraja.PhoneHidden},
		{"   ", daraja.PhoneHidden},
		{hex.EncodeToString(sum[:]), daraja.PhoneMatches},
		{hex.EncodeToString(other[:]), daraja.PhoneDiffers},
		{"2547**83**4149", daraja.PhoneDiffers},
		{"254708374149****149", daraja.PhoneDiffers},
		{"2547-***-4149", daraja.PhoneDiffers},
		{"phone", daraja.PhoneDiffers},
		{"null", daraja.PhoneDiffers},
	}
	for _, tt := range tests {
		if got := daraja.ComparePhone(tt.reported, want); got != tt.check {
			t.Errorf("ComparePhone(%q, %q): got %v, want %v", tt.reported, want, got, tt.check)
		}
	}
}
