package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

func TestVersionOf(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{
		{Key: "-compiler", Value: "gc"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "8f95e88e1234567890abcdef8f95e88e12345678"},
		{Key: "vcs.time", Value: "2026-12-07T22:06:00Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	modified := append(vcs[:4:4], debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, c := range []struct {
		name        string
		bi          *debug.BuildInfo
		linked      string
		short, line string
	}{
		{
			name:  "no build information",
			short: "devel",
			line:  "lipa devel " + runtime.Version() + " " + platform,
		},
		{
			name:  "a local build without VCS stamping",
			bi:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/lipa-gateway/lipa", Version: "(devel)"}},
			short: "devel",
			line:  "lipa devel go1.26.8 " + platform,
		},
		{
			name:  "a tagged module version",
			bi:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			short: "v1.4.0",
			line:  "lipa v1.4.0 go1.26.8 " + platform,
		},
		{
			name:  "a pseudo-version with VCS information",
			bi:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261207220600-8f95e88e1234"}, Settings: vcs},
			short: "v0.0.0-20261207220600-8f95e88e1234",
			line:  "lipa v0.0.0-20261207220600-8f95e88e1234 (revision 8f95e88e1234567890abcdef8f95e88e12345678, 2026-12-07T22:06:00Z) go1.26.8 " + platform,
		},
		{
			name:  "devel with a modified checkout",
			bi:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: modified},
			short: "devel+8f95e88e1234+dirty",
			line:  "lipa devel (revision 8f95e88e1234567890abcdef8f95e88e12345678, 2026-12-07T22:06:00Z, modified) go1.26.8 " + platform,
		},
		{
			name:   "the release set at link time wins",
			bi:     &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			linked: "v2.0.1",
			short:  "v2.0.1",
			line:   "lipa v2.0.1 (revision 8f95e88e1234567890abcdef8f95e88e12345678, 2026-12-07T22:06:00Z) go1.26.8 " + platform,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := versionOf(c.bi, c.linked)
			if got := v.Short(); got != c.short {
				t.Errorf("Short: got %q, want %q", got, c.short)
			}
			if got := v.String(); got != c.line {
				t.Errorf("String: got %q, want %q", got, c.line)
			}
		})
	}
}

// TestVersionCommand runs `lipa version` in-process: it prints one line
// with the Go version and needs no configuration, not even a valid one.
func TestVersionCommand(t *testing.T) {
	broken := map[string]string{"MPESA_ENVIRONMENT": "nowhere"}
	code, stdout, stderr := runCLI(t, broken, "version")
	if code != 0 {
		t.Fatalf("lipa version with a broken configuration: got exit %d (stderr %q), want 0", code, stderr)
	}
	want := readBuildVersion().String() + "\n"
	if stdout != want {
		t.Errorf("lipa version: got %q, want %q", stdout, want)
	}
	if !strings.HasPrefix(stdout, "lipa ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("lipa version: got %q, want a line starting \"lipa \" naming %s", stdout, runtime.Version())
	}
	if code, _, _ := runCLI(t, broken, "version", "extra"); code != 2 {
		t.Errorf("lipa version extra: got exit %d, want 2 (usage)", code)
	}
}

// TestVersionBinary builds lipa as the Dockerfile does, with the release
// set at link time, and runs `lipa version`.
func TestVersionBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lipa")
	build := exec.Command("go", "build", "-ldflags=-X main.version=v9.8.7-test", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("lipa version: %v", err)
	}
	if got := string(out); !strings.HasPrefix(got, "lipa v9.8.7-test ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("lipa version: got %q, want \"lipa v9.8.7-test … %s …\"", got, runtime.Version())
	}
}

// TestReadyzVersion: /readyz names the running build's version, and
// `lipa healthcheck` passes against a ready Lipa and fails against none.
func TestReadyzVersion(t *testing.T) {
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		svc := startTestService(t, databaseURL, nil)
		r := svc.do(t, http.MethodGet, "/readyz", "", nil)
		wantStatus(t, "GET /readyz", r, http.StatusOK)
		want := readBuildVersion().Short()
		if got := jsonStr(r.Body, "version"); got != want || want == "" {
			t.Errorf("/readyz version: got %q, want %q (body %s)", got, want, r.Raw)
		}
		if got := jsonStr(r.Body, "status"); got != "ready" {
			t.Errorf("/readyz status: got %q, want ready", got)
		}

		env := map[string]string{"LISTEN_ADDR": strings.TrimPrefix(svc.URL, "http://")}
		code, stdout, stderr := runCLI(t, env, "healthcheck")
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("lipa healthcheck (LISTEN_ADDR %s): got exit %d, stdout %q, stderr %q; want 0 and the /readyz answer", env["LISTEN_ADDR"], code, stdout, stderr)
		}
		if code, _, stderr := runCLI(t, nil, "healthcheck", "--url", svc.URL+"/"); code != 0 {
			t.Errorf("lipa healthcheck --url %s/: got exit %d (stderr %q), want 0", svc.URL, code, stderr)
		}
	})
}

func TestHealthcheckFails(t *testing.T) {
	closed := freeAddr(t) // nothing listens there any more
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"nothing listening", map[string]string{"LISTEN_ADDR": closed}, nil, 1, "not ready"},
		{"--url with nothing listening", nil, []string{"--url", "http://" + closed}, 1, "not ready"},
		{"a port chosen at random cannot be reached", map[string]string{"LISTEN_ADDR": "127.0.0.1:0"}, nil, 1, "LISTEN_ADDR"},
		{"an argument", nil, []string{"now"}, 2, "usage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, c.env, append([]string{"healthcheck"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("lipa healthcheck %v: got exit %d, stderr %q; want %d mentioning %q", c.args, code, stderr, c.code, c.want)
			}
		})
	}
}

func TestListenURL(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{"127.0.0.1:8000", "http://127.0.0.1:8000"},
		{"0.0.0.0:8000", "http://127.0.0.1:8000"},
		{":8000", "http://127.0.0.1:8000"},
		{"[::]:8000", "http://127.0.0.1:8000"},
		{"[::1]:8000", "http://[::1]:8000"},
		{"localhost:9000", "http://localhost:9000"},
	} {
		if got, err := listenURL(c.addr); err != nil || got != c.want {
			t.Errorf("listenURL(%q): got %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
	for _, addr := range []string{"", "8000", "127.0.0.1:0", "127.0.0.1"} {
		if got, err := listenURL(addr); err == nil {
			t.Errorf("listenURL(%q): got %q, want an error", addr, got)
		}
	}
}
