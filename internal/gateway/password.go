package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/lipa-gateway/lipa"
)

// Password rules for operator accounts.
const (
	MinPasswordLength = 12   // characters
	MaxPasswordLength = 1024 // bytes; a longer input is refused before it is hashed
)

// argon2id parameters: OWASP's Password Storage Cheat Sheet (2023)
// recommends m=19 MiB, t=2, p=1 as a minimum for argon2id.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

var b64 = base64.RawStdEncoding

// hashPassword returns the argon2id hash of password as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, salt and hash in unpadded
// standard base64.
func hashPassword(password lipa.Secret) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password.Reveal()), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkPassword reports whether password matches a PHC string made by
// hashPassword (with whatever parameters it records), comparing in
// constant time. A malformed hash matches nothing.
func checkPassword(password lipa.Secret, phc string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password.Reveal()), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a sign-in names no operator, so that
// an unknown username takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string { return hashPassword("lipa-no-such-operator") })

// checkPasswordRules refuses a password that is too short, too long, or not
// valid UTF-8, with Invalid "invalid_password".
func checkPasswordRules(password lipa.Secret) error {
	pw := password.Reveal()
	switch {
	case len(pw) > MaxPasswordLength:
		return lipa.InvalidField("invalid_password", "password", "the password is longer than %d bytes", MaxPasswordLength)
	case !utf8.ValidString(pw):
		return lipa.InvalidField("invalid_password", "password", "the password is not valid UTF-8 text")
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return lipa.InvalidField("invalid_password", "password", "the password must be at least %d characters", MinPasswordLength)
	}
	return nil
}

// NewPassword returns a random password for an operator: 24 characters of
// lower-case base32 in groups of four separated by '-' (120 random bits).
func NewPassword() lipa.Secret {
	b := make([]byte, 15)
	rand.Read(b)
	s := strings.ToLower(idEncoding.EncodeToString(b))
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:min(i+4, len(s))])
	}
	return lipa.Secret(strings.Join(groups, "-"))
}
