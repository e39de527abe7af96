package daraja

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lipa-gateway/lipa"
)

// Safaricom's M-Pesa public key certificates, the ones SDKs ship as the
// portal downloads "SandboxCertificate.cer" and "ProductionCertificate.cer"
// (docs/daraja.md "Initiator credentials" names where these copies come
// from). They are public data. Both are long expired; Daraja does not check
// a certificate's dates, only that the credential decrypts with its private
// key. Safaricom may hand out a newer production certificate at go-live:
// Config.Certificate (MPESA_CERTIFICATE_FILE in the CLI) overrides these.
var (
	//go:embed certs/sandbox.cer
	sandboxCertPEM []byte
	//go:embed certs/production.cer
	productionCertPEM []byte
)

// SandboxCertificate returns Safaricom's sandbox public key certificate
// (CN apicrypt.safaricom.co.ke), parsed anew on each call, for
// SecurityCredential against SandboxURL. See docs/daraja.md "Initiator
// credentials".
func SandboxCertificate() *x509.Certificate { return mustCertificate(sandboxCertPEM) }

// ProductionCertificate returns Safaricom's production public key
// certificate (CN apigee.apicaller.safaricom.co.ke), parsed anew on each
// call, for SecurityCredential against ProductionURL. See docs/daraja.md
// "Initiator credentials".
func ProductionCertificate() *x509.Certificate { return mustCertificate(productionCertPEM) }

func mustCertificate(data []byte) *x509.Certificate {
	c, err := ParseCertificate(data)
	if err != nil {
		panic("daraja: embedded certificate: " + err.Error())
	}
	return c
}

// CertificateFor returns the certificate for Daraja at baseURL:
// ProductionCertificate for ProductionURL, SandboxCertificate for anything
// else (the sandbox, a proxy, a simulator). Trailing slashes are ignored.
func CertificateFor(baseURL string) *x509.Certificate {
	if strings.TrimRight(strings.TrimSpace(baseURL), "/") == ProductionURL {
		return ProductionCertificate()
	}
	return SandboxCertificate()
}

// ParseCertificate reads an X.509 certificate, PEM ("-----BEGIN
// CERTIFICATE-----", the form the Daraja portal's .cer downloads take) or
// DER, whose public key is RSA, as SecurityCredential needs. The
// certificate's dates and issuer are not checked: Daraja uses long-expired
// self-issued certificates. Anything else is an error.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("daraja: PEM block is %q, want CERTIFICATE", block.Type)
		}
		der = block.Bytes
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("daraja: not an X.509 certificate: %w", err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, errors.New("daraja: certificate key is not RSA")
	}
	return c, nil
}

// LoadCertificate reads the certificate file at path (the portal's .cer
// download, PEM or DER; MPESA_CERTIFICATE_FILE in the CLI) with
// ParseCertificate. Errors name the file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("daraja: certificate file: %w", err)
	}
	c, err := ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// SecurityCredential returns the SecurityCredential of the initiator APIs
// (Reversal, Transaction Status): the initiator's password, as its plain
// bytes, encrypted with cert's RSA public key with PKCS #1 v1.5 padding, then
// base64 (standard, padded) (docs/daraja.md "Initiator credentials"). The
// padding is random, so two calls give different credentials that both
// decrypt to password. The result is as sensitive as the password itself
// (Daraja accepts it until the password changes), so it is a lipa.Secret.
// An empty password, a non-RSA certificate or a password too long for the
// key is an error.
func SecurityCredential(password lipa.Secret, cert *x509.Certificate) (lipa.Secret, error) {
	if password == "" {
		return "", errors.New("daraja: initiator password is empty")
	}
	if cert == nil {
		return "", errors.New("daraja: no certificate to encrypt the initiator password with")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "", errors.New("daraja: certificate key is not RSA")
	}
	// Deprecated in crypto/rsa, but it is what Daraja decrypts.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(password.Reveal()))
	if err != nil {
		return "", fmt.Errorf("daraja: encrypt initiator password: %w", err)
	}
	return lipa.Secret(base64.StdEncoding.EncodeToString(ct)), nil
}
