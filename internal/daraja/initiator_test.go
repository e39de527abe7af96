package daraja_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
)

func TestEmbeddedCertificates(t *testing.T) {
	tests := []struct {
		name string
		cert *x509.Certificate
		cn   string
	}{
		{"sandbox", daraja.SandboxCertificate(), "apicrypt.safaricom.co.ke"},
		{"production", daraja.ProductionCertificate(), "apigee.apicaller.safaricom.co.ke"},
		{"for the sandbox URL", daraja.CertificateFor(daraja.SandboxURL), "apicrypt.safaricom.co.ke"},
		{"for the production URL", daraja.CertificateFor(daraja.ProductionURL + "/"), "apigee.apicaller.safaricom.co.ke"},
		{"for a simulator", daraja.CertificateFor("http://127.0.0.1:8001"), "apicrypt.safaricom.co.ke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cert.Subject.CommonName != tt.cn {
				t.Errorf("CommonName: got %q, want %q", tt.cert.Subject.CommonName, tt.cn)
			}
			if k, ok := tt.cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("key: got %T, want a 2048-bit RSA key", tt.cert.PublicKey)
			}
			cred, err := daraja.SecurityCredential("Safaricom999!*!", tt.cert)
			if err != nil {
				t.Fatal(err)
			}
			if ct, err := base64.StdEncoding.DecodeString(cred.Reveal()); err != nil || len(ct) != 256 {
				t.Errorf("credential: got %d bytes (%v), want 256 bytes of base64", len(ct), err)
			}
		})
	}
}

// testKeyPair makes a throwaway RSA key and a self-signed certificate for
// it, PEM-encoded.
func testKeyPair(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestSecurityCredentialDecrypts: the credential is the password's bytes,
// RSA PKCS #1 v1.5, base64; each call pads anew.
func TestSecurityCredentialDecrypts(t *testing.T) {
	key, certPEM := testKeyPair(t)
	for _, form := range []struct {
		name string
		data []byte
	}{{"PEM", certPEM}, {"DER", func() []byte { b, _ := pem.Decode(certPEM); return b.Bytes }()}} {
		t.Run(form.name, func(t *testing.T) {
			cert, err := daraja.ParseCertificate(form.data)
			if err != nil {
				t.Fatalf("ParseCertificate: %v", err)
			}
			a, err := daraja.SecurityCredential("Safaricom999!*!", cert)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := daraja.SecurityCredential("Safaricom999!*!", cert)
			if a == b {
				t.Error("two credentials: got the same, want random padding")
			}
			ct, _ := base64.StdEncoding.DecodeString(a.Reveal())
			plain, err := rsa.DecryptPKCS1v15(nil, key, ct)
			if err != nil || string(plain) != "Safaricom999!*!" {
				t.Errorf("decrypted: got %q, %v; want the password", plain, err)
			}
			if a.String() != "[redacted]" {
				t.Errorf("String: got %q, want it redacted", a.String())
			}
		})
	}
}

func TestLoadCertificate(t *testing.T) {
	_, certPEM := testKeyPair(t)
	path := filepath.Join(t.TempDir(), "ProductionCertificate.cer")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := daraja.LoadCertificate(path); err != nil || c.Subject.CommonName != "test" {
		t.Errorf("LoadCertificate: got %v, %v; want the test certificate", c, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.cer")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for _, p := range []string{bad, filepath.Join(t.TempDir(), "missing.cer")} {
		if _, err := daraja.LoadCertificate(p); err == nil || !strings.Contains(err.Error(), filepath.Base(p)) {
			t.Errorf("LoadCertificate(%s): got %v, want an error naming the file", p, err)
		}
	}
}

func TestCredentialErrors(t *testing.T) {
	if _, err := daraja.SecurityCredential("", daraja.SandboxCertificate()); err == nil {
		t.Error("empty password: got no error")
	}
	if _, err := daraja.SecurityCredential("x", nil); err == nil {
		t.Error("no certificate: got no error")
	}
	for _, data := range [][]byte{nil, []byte("not a certificate"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})} {
		if _, err := daraja.ParseCertificate(data); err == nil {
			t.Errorf("ParseCertificate(%q): got no error", data)
		}
	}
	for _, tt := range []struct {
		name string
		mod  func(*daraja.Config)
	}{
		{"name without password", func(c *daraja.Config) { c.InitiatorName = "testapi" }},
		{"password without name", func(c *daraja.Config) { c.InitiatorPassword = "x" }},
	} {
		cfg := daraja.Config{BaseURL: daraja.SandboxURL, ConsumerKey: "k", ConsumerSecret: "s"}
		tt.mod(&cfg)
		if _, err := daraja.New(cfg); err == nil {
			t.Errorf("%s: New got no error", tt.name)
		}
	}
}

// TestInitiatorWireBodies: Reverse and TransactionStatus send exactly the
// field names of Daraja's samples (RecieverIdentifierType, sic), the
// initiator's name and a credential that decrypts to its password, and
// decode the acknowledgement.
func TestInitiatorWireBodies(t *testing.T) {
	key, certPEM := testKeyPair(t)
	cert, _ := daraja.ParseCertificate(certPEM)
	var bodies []map[string]any
	ack := fixture(t, "async-request-ack.json")
	record := func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		bodies = append(bodies, m)
		serve(http.StatusOK, ack)(w, r)
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /mpesa/reversal/v1/request":        record,
		"POST /mpesa/transactionstatus/v1/query": record,
	})
	c := newClient(t, f.URL, func(c *daraja.Config) {
		c.InitiatorName, c.InitiatorPassword, c.Certificate = "apiop37", "Safaricom999!*!", cert
	})
	got, err := c.Reverse(t.Context(), daraja.ReversalRequest{
		TransactionID: "PDU91HIVIT", Amount: lipa.Shillings(200), ReceiverParty: "603021",
		ResultURL: "https://mydomain.com/reversal/result", QueueTimeOutURL: "https://mydomain.com/reversal/queue", Remarks: "Payment reversal",
	})
	if err != nil {
		t.Fatalf("Reverse: %v", err)
	}
	want := &daraja.Ack{OriginatorConversationID: "1236-7134259-1", ConversationID: "AG_20210709_1234409f86436c583e3f",
		ResponseCode: "0", ResponseDescription: "Accept the service request successfully.", Raw: ack}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ack (-want +got):\n%s", diff)
	}
	if _, err := c.TransactionStatus(t.Context(), daraja.TransactionStatusRequest{
		TransactionID: "NEF61H8J60", OriginalConversationID: "7071-4170-a0e5-8345632bad442144258", PartyA: "600782",
		ResultURL: "https://example.com/transactionstatus/result", QueueTimeOutURL: "https://example.com/transactionstatus/timeout",
		Remarks: "OK", Occasion: "OK",
	}); err != nil {
		t.Fatalf("TransactionStatus: %v", err)
	}
	for i, name := range []string{"reversal-request.json", "transaction-status-request.json"} {
		var fx map[string]any
		json.Unmarshal(fixture(t, name), &fx)
		body := bodies[i]
		ct, _ := base64.StdEncoding.DecodeString(body["SecurityCredential"].(string))
		if plain, err := rsa.DecryptPKCS1v15(nil, key, ct); err != nil || string(plain) != "Safaricom999!*!" {
			t.Errorf("%s: SecurityCredential decrypts to %q, %v; want the password", name, plain, err)
		}
		fx["SecurityCredential"], body["SecurityCredential"] = "", ""
		fx["Initiator"] = "apiop37"
		if diff := cmp.Diff(fx, body); diff != "" {
			t.Errorf("body against %s (-fixture +got):\n%s", name, diff)
		}
	}
}

func TestAckErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(*testing.T, error)
	}{
		{"non-zero ResponseCode", `{"ResponseCode":"1","ResponseDescription":"Rejected","ConversationID":"AG_1"}`,
			wantAPIError("reversal", 200, "1", daraja.ReasonUnknown, daraja.ClassFinal)},
		{"no IDs", `{"ResponseCode":"0","ResponseDescription":"Accept the service request successfully."}`,
			wantBadResponse("reversal", 200, "application/json", daraja.ClassFinal)},
		{"no ResponseCode", `{"ConversationID":"AG_1"}`, wantBadResponse("reversal", 200, "application/json", daraja.ClassFinal)},
		{"duplicate originator envelope", string(fixture(t, "b2c-error-duplicate-originator.json")),
			wantAPIError("reversal", 200, "500.002.1001", daraja.ReasonUnknown, daraja.ClassFinal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"POST /mpesa/reversal/v1/request": serve(http.StatusOK, []byte(tt.body))})
			c := newClient(t, f.URL, func(c *daraja.Config) { c.InitiatorName, c.InitiatorPassword = "testapi", "pw" })
			_, err := c.Reverse(t.Context(), daraja.ReversalRequest{TransactionID: "PDU91HIVIT"})
			tt.check(t, err)
		})
	}
}
