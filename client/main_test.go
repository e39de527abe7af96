package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/internal/api/openapitest"
)

// The `lipa serve` every test and example of this package talks to: the
// real binary in simulator mode (20 ms callback delay), on a fresh SQLite
// file and a free loopback port, started by TestMain. LIPA_BIN names a
// built binary to use; otherwise TestMain builds cmd/lipa.
var (
	lipaURL string   // its base URL
	apiKey  string   // the key of the app "examples", for the examples
	lipaBin string   // the binary
	lipaEnv []string // its environment, for CLI commands
)

func TestMain(m *testing.M) {
	stop, err := startLipa()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startLipa builds (unless LIPA_BIN is set) and starts `lipa serve`, waits
// until it is ready, creates the app "examples", and returns a function
// that stops it and removes its files.
func startLipa() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "lipa-client-test-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	lipaBin = os.Getenv("LIPA_BIN")
	if lipaBin == "" {
		lipaBin = filepath.Join(dir, "lipa")
		out, err := exec.Command("go", "build", "-o", lipaBin, "github.com/lipa-gateway/lipa/cmd/lipa").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go build cmd/lipa: %v\n%s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MPESA_") && !strings.HasPrefix(kv, "LIPA_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			lipaEnv = append(lipaEnv, kv)
		}
	}
	lipaEnv = append(lipaEnv,
		"DATABASE_URL=sqlite:"+filepath.Join(dir, "lipa.db"),
		"LISTEN_ADDR="+addr,
		"MPESA_ENVIRONMENT=simulator",
		"LIPA_SIMULATOR_CALLBACK_DELAY=20ms",
		"LIPA_APP_RATE_LIMIT=0",
		"LOG_FILE="+filepath.Join(dir, "lipa.log"),
	)
	var out bytes.Buffer
	cmd := exec.Command(lipaBin, "serve")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, lipaEnv, &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lipaURL = "http://" + addr
	c, _ := client.New(lipaURL, "")
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, rerr := c.Ready(ctx)
		cancel()
		if rerr == nil {
			break
		}
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("lipa serve exited (%v):\n%s", werr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("lipa serve was not ready within a minute (%v):\n%s", rerr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if apiKey, err = createApp("examples"); err != nil {
		cmd.Process.Kill()
		<-exited
		return nil, err
	}
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}, nil
}

// lipaCLI runs a lipa command against the test server's database.
func lipaCLI(args ...string) ([]byte, error) {
	cmd := exec.Command(lipaBin, args...)
	cmd.Env = lipaEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("lipa %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// createApp creates an app with `lipa apps create NAME --json` and returns
// its key.
func createApp(name string) (string, error) {
	out, err := lipaCLI("apps", "create", name, "--json")
	if err != nil {
		return "", err
	}
	var app struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(out, &app); err != nil || app.APIKey == "" {
		return "", fmt.Errorf("lipa apps create %s --json: got %q, want {\"api_key\": …}", name, out)
	}
	return app.APIKey, nil
}

var seq atomic.Int64

// newApp creates an app of its own for t and returns a client for it whose
// every request and answer is checked against the OpenAPI document.
func newApp(t *testing.T, opts ...client.Option) (*client.Client, string) {
	t.Helper()
	name := fmt.Sprintf("app%d", seq.Add(1))
	key, err := createApp(name)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, key, opts...), name
}

// newClient returns a client with key whose traffic is checked against
// the OpenAPI document; opts come after that check is installed.
func newClient(t *testing.T, key string, opts ...client.Option) *client.Client {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: openapitest.Transport(t, nil)}
	c, err := client.New(lipaURL, key, append([]client.Option{client.WithHTTPClient(hc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// freshPhone returns an ordinary (always paying) phone number no other
// push of this process used.
func freshPhone() string { return fmt.Sprintf("25471%07d", 2000000+seq.Add(1)) }

// freshRef returns a reference no other push of this process used.
func freshRef() string { return fmt.Sprintf("CL%d", 100000+seq.Add(1)) }

// waitFinal polls the payment until it is SUCCESS or FAILED.
func waitFinal(t *testing.T, c *client.Client, id string) *client.Payment {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err := c.Payment(context.Background(), id)
		if err != nil {
			t.Fatalf("Payment(%s): %v", id, err)
		}
		if p.Status != client.StatusPending {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment %s: got PENDING after 15 s, want SUCCESS or FAILED", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonField returns the string field name of the JSON object in out.
func jsonField(t *testing.T, out []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("got %q, want a JSON object: %v", out, err)
	}
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("got %s, want a %s", out, name)
	}
	return s
}
