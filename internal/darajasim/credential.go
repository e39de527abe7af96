package darajasim

import (
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"sync"

	"github.com/lipa-gateway/lipa"
)

// The simulator's own RSA key pair, generated for the simulator alone. It is
// not Safaricom's and protects nothing: the private key is public in this
// repository. Its only use is to let the simulator read back an initiator
// password that a client encrypted with CertificatePEM, so that a wrong
// password can be answered with ResultCode 2001 as Daraja does.
var (
	//go:embed simkey/simulator-only.cer
	simulatorCertPEM []byte
	//go:embed simkey/simulator-only.key
	simulatorKeyPEM []byte
)

// CertificatePEM returns the simulator's certificate, PEM-encoded
// (O=Lipa Daraja simulator, CN=darajasim.invalid). Encrypt the initiator
// password with it (daraja.Config.Certificate) and the simulator checks the
// password; see "Initiator credentials" in the package comment. Never use it
// against Daraja: Safaricom cannot decrypt it.
func CertificatePEM() []byte { return append([]byte(nil), simulatorCertPEM...) }

// Certificate returns the parsed CertificatePEM.
func Certificate() *x509.Certificate {
	block, _ := pem.Decode(simulatorCertPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic("darajasim: embedded certificate: " + err.Error())
	}
	return c
}

var simulatorKey = sync.OnceValue(func() *rsa.PrivateKey {
	block, _ := pem.Decode(simulatorKeyPEM)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic("darajasim: embedded key: " + err.Error())
	}
	return k.(*rsa.PrivateKey)
})

// credentialCheck is what the simulator makes of an initiator and its
// SecurityCredential.
type credentialCheck int

const (
	credentialOK         credentialCheck = iota // the password decrypts and is accepted
	credentialUnverified                        // not encrypted with the simulator's key; accepted unchecked
	credentialRejected                          // ResultCode 2001
	credentialLocked                            // ResultCode 8006
)

// Magic initiator names for Reversal and Transaction Status.
const (
	// InitiatorInvalid: every request gets ResultCode 2001 "The initiator
	// information is invalid.", whatever its credential.
	InitiatorInvalid = "invalid-initiator"
	// InitiatorLocked: every request gets ResultCode 8006 "The security
	// credential is locked.".
	InitiatorLocked = "locked-initiator"
)

// validCredential reports whether s looks like base64, as a
// SecurityCredential must; anything else is refused at once as "Invalid
// SecurityCredential". Badly padded base64 passes (Safaricom's own samples
// are), and is then simply not decryptable.
func validCredential(s string) bool {
	return s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == ""
}

// checkCredential decides the fate of an initiator request's credentials:
// the magic names first, then the password the simulator reads with its
// own key (checked against Config.Initiators when set). A credential the
// key cannot read is accepted unchecked unless Config.StrictCredentials.
func (s *Server) checkCredential(initiator, credential string) credentialCheck {
	switch initiator {
	case InitiatorInvalid:
		return credentialRejected
	case InitiatorLocked:
		return credentialLocked
	}
	ct, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(credential))
	// Deprecated in crypto/rsa, but it is what Daraja's credentials use.
	plain, err := rsa.DecryptPKCS1v15(nil, simulatorKey(), ct)
	if err != nil {
		if s.strictCredentials {
			return credentialRejected
		}
		return credentialUnverified
	}
	if s.initiators == nil {
		if len(plain) == 0 {
			return credentialRejected
		}
		return credentialOK
	}
	want, ok := s.initiators[initiator]
	if !ok || lipa.Secret(plain) != want {
		return credentialRejected
	}
	return credentialOK
}
