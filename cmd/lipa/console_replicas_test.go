package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lipa-gateway/lipa/internal/darajasim"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestConsoleReplicasInBrowser runs the operators' flows in Chromium
// against two `lipa serve` processes on one PostgreSQL database, moving
// between them: a session made on one replica works on the other, and
// signing out on one ends it on both.
func TestConsoleReplicasInBrowser(t *testing.T) {
	databaseURL := sqlstoretest.URL(t, sqlstore.Postgres)
	bin := buildLipa(t)
	sim := darajasim.New(darajasim.Config{CallbackDelay: 50 * time.Millisecond})
	t.Cleanup(sim.Close)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	rs := startReplicas(t, bin, databaseURL, simSrv.URL, 2)
	logDir := t.TempDir()
	rig := consoleRig{urls: []string{rs[0].url, rs[1].url}, cli: func(t *testing.T, stdin string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "LOG_FILE="+filepath.Join(logDir, "cli.log"))
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			code = 1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		return code, out.String(), errb.String()
	}}
	consoleFlows(t, rig)
}
