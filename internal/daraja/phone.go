package daraja

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/lipa-gateway/lipa"
)

// PhoneCheck is what comparing a phone number Safaricom reports with the
// one Lipa expects shows.
type PhoneCheck int

// The results of ComparePhone.
const (
	// PhoneHidden: the report shows nothing that tells numbers apart: it
	// is empty, or masked so far that fewer than three of the number's
	// last digits are visible.
	PhoneHidden PhoneCheck = iota
	// PhoneMatches: everything the report shows agrees with the number.
	PhoneMatches
	// PhoneDiffers: the report shows something that is not the number.
	PhoneDiffers
)

// minVisibleEnd is how many of a masked number's last digits must be
// visible for the mask to identify anything: every Kenyan mobile number
// starts with "2547" or "2541", so the start alone tells none apart.
const minVisibleEnd = 3

// ComparePhone compares a phone number as Safaricom reports it (an STK
// callback's PhoneNumber, a C2B MSISDN) with msisdn, the number Lipa
// expects ("2547XXXXXXXX"). It understands the forms Daraja sends (Lipa's
// docs/daraja.md, "PhoneNumber masking"):
//
//   - plain digits, in any form lipa.ParsePhone reads ("254708374149"):
//     PhoneMatches when it is the same number, else PhoneDiffers;
//   - a mask: visible digits, one run of '*' (or 'X'/'x'), visible digits,
//     with spaces anywhere and an optional leading '+' ("2547****4149",
//     "2547 ***** 149", "25470****149", or of the local form "0708***149"):
//     PhoneMatches when the visible start is msisdn's start and the visible
//     end is msisdn's end, so every visible digit agrees with the digit at
//     its place; PhoneHidden when fewer than three trailing digits are
//     visible ("2547********", "****");
//   - a SHA-256 hash, 64 hexadecimal digits of the "2547…" number:
//     PhoneMatches when it is msisdn's hash.
//
// Anything else that is not empty (letters, two masked runs, a mask with
// more visible digits than a number has) is PhoneDiffers; empty is
// PhoneHidden.
func ComparePhone(reported, msisdn string) PhoneCheck {
	r := strings.TrimPrefix(strings.Join(strings.Fields(reported), ""), "+")
	if r == "" {
		return PhoneHidden
	}
	if len(r) == 64 && isHex(r) {
		sum := sha256.Sum256([]byte(msisdn))
		if strings.EqualFold(r, hex.EncodeToString(sum[:])) {
			return PhoneMatches
		}
		return PhoneDiffers
	}
	start := strings.IndexAny(r, "*Xx")
	if start < 0 {
		if p, err := lipa.ParsePhone(r); err == nil && string(p) == msisdn {
			return PhoneMatches
		}
		return PhoneDiffers
	}
	end := start
	for end < len(r) && strings.IndexByte("*Xx", r[end]) >= 0 {
		end++
	}
	prefix, suffix := r[:start], r[end:]
	if !isDigits(prefix) || !isDigits(suffix) {
		return PhoneDiffers
	}
	if len(prefix)+len(suffix) >= len(msisdn) {
		return PhoneDiffers // a mask hides something; this shows a whole number or more
	}
	if len(suffix) < minVisibleEnd {
		return PhoneHidden
	}
	want := msisdn
	if strings.HasPrefix(prefix, "0") && strings.HasPrefix(msisdn, "254") {
		want = "0" + msisdn[3:] // a mask of the local form, "0708***149"
	}
	if strings.HasPrefix(want, prefix) && strings.HasSuffix(want, suffix) {
		return PhoneMatches
	}
	return PhoneDiffers
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
