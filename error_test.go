package lipa_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
)

func TestErrorf(t *testing.T) {
	e := lipa.Errorf(lipa.NotFound, "payment_not_found", "no payment %s", "pay_1")
	if e.Kind != lipa.NotFound || e.Code != "payment_not_found" || e.Message != "no payment pay_1" {
		t.Errorf("Errorf: got %q/%q/%q, want %q/%q/%q", e.Kind, e.Code, e.Message, lipa.NotFound, "payment_not_found", "no payment pay_1")
	}
	if e.Details != nil || e.Err != nil {
		t.Errorf("Errorf: got Details %v and Err %v, want nil and nil", e.Details, e.Err)
	}
	if got, want := e.Error(), "payment_not_found: no payment pay_1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorWithCopies(t *testing.T) {
	orig := lipa.Errorf(lipa.Invalid, "invalid_amount", "bad amount")
	a := orig.With("field", "amount")
	b := a.With("limit", 250000)
	c := a.With("field", "other")

	if orig.Details != nil {
		t.Errorf("With mutated the original: got Details %v, want nil", orig.Details)
	}
	if diff := cmp.Diff(map[string]any{"field": "amount"}, a.Details); diff != "" {
		t.Errorf("a.Details (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"field": "amount", "limit": 250000}, b.Details); diff != "" {
		t.Errorf("b.Details (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"field": "other"}, c.Details); diff != "" {
		t.Errorf("c.Details (-want +got):\n%s", diff)
	}
	if a == orig || b == a {
		t.Errorf("With returned the same pointer, want a copy")
	}
	if b.Kind != lipa.Invalid || b.Code != "invalid_amount" || b.Message != "bad amount" {
		t.Errorf("With: got %q/%q/%q, want the original's kind, code and message", b.Kind, b.Code, b.Message)
	}
}

func TestErrorWrap(t *testing.T) {
	cause := errors.New("disk full")
	orig := lipa.Errorf(lipa.Internal, "internal_error", "could not save").With("payment_id", "pay_1")
	w := orig.Wrap(cause)
	if orig.Err != nil {
		t.Errorf("Wrap mutated the original: got Err %v, want nil", orig.Err)
	}
	if !errors.Is(w, cause) {
		t.Errorf("errors.Is(Wrap(cause), cause) = false, want true")
	}
	if got, want := w.Error(), "internal_error: could not save: disk full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestInvalidField(t *testing.T) {
	e := lipa.InvalidField("invalid_reference", "reference", "reference is longer than %d characters", 12)
	if e.Kind != lipa.Invalid || e.Code != "invalid_reference" || e.Message != "reference is longer than 12 characters" {
		t.Errorf("InvalidField: got %q/%q/%q", e.Kind, e.Code, e.Message)
	}
	if diff := cmp.Diff(map[string]any{"field": "reference"}, e.Details); diff != "" {
		t.Errorf("InvalidField Details (-want +got):\n%s", diff)
	}
}

func TestErrorKindAndCode(t *testing.T) {
	conflict := lipa.Errorf(lipa.Conflict, "already_claimed", "already claimed")
	tests := []struct {
		name     string
		err      error
		wantKind lipa.Kind
		wantCode string
	}{
		{"direct", conflict, lipa.Conflict, "already_claimed"},
		{"wrapped", fmt.Errorf("claim payment: %w", conflict), lipa.Conflict, "already_claimed"},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", conflict)), lipa.Conflict, "already_claimed"},
		{"joined", errors.Join(errors.New("other"), conflict), lipa.Conflict, "already_claimed"},
		{"first *Error wins", fmt.Errorf("x: %w", lipa.Errorf(lipa.NotFound, "payment_not_found", "m").Wrap(conflict)), lipa.NotFound, "payment_not_found"},
		{"plain", errors.New("boom"), lipa.Internal, "internal_error"},
		{"plain wrapped", fmt.Errorf("x: %w", errors.New("boom")), lipa.Internal, "internal_error"},
		{"wrapped with %v loses the kind", fmt.Errorf("x: %v", conflict), lipa.Internal, "internal_error"},
	}
	for _, tt := range tests {
		if got := lipa.ErrorKind(tt.err); got != tt.wantKind {
			t.Errorf("%s: ErrorKind = %q, want %q", tt.name, got, tt.wantKind)
		}
		if got := lipa.ErrorCode(tt.err); got != tt.wantCode {
			t.Errorf("%s: ErrorCode = %q, want %q", tt.name, got, tt.wantCode)
		}
	}
}
