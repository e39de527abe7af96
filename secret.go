package lipa

import "log/slog"

// Secret is a credential (consumer secret, passkey, API key, signing secret)
// that must never reach a log or an API answer. It prints as "[redacted]"
// through fmt and log/slog; Reveal returns the real value for the one place
// that needs it (an Authorization header, a password hash).
type Secret string

// Reveal returns the secret's real value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret, so that fmt never
// prints the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString returns the same as String, for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue returns the redacted form for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns the redacted form, so a Secret never leaks through
// encoding/json or any other text encoder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
