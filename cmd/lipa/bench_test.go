package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/sqlstore/sqlstoretest"
)

// TestBench runs `lipa bench` briefly on each backend (it starts Lipa, the
// simulator and the minimal server as processes of a built binary) and
// checks the shape of its report, never its numbers: every endpoint in
// order, each served without error by Lipa and by the minimal server, with
// a ratio, and Lipa's memory.
func TestBench(t *testing.T) {
	bin := buildLipa(t)
	sqlstoretest.Run(t, func(t *testing.T, databaseURL string) {
		cmd := exec.Command(bin, "bench", "--duration", "300ms", "--warmup", "0s", "--connections", "2",
			"--seed", "50", "--minimal-rows", "50000", "--database-url", databaseURL, "--json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("lipa bench: %v\n%s", err, stderr.String())
		}
		var rep benchReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("lipa bench --json: got %q (%v), want a report", stdout.String(), err)
		}
		wantDB := "sqlite"
		if strings.HasPrefix(databaseURL, "postgres") {
			wantDB = "postgres"
		}
		if rep.Database != wantDB || rep.Target != "started" || rep.Replicas != 1 || rep.Connections != 2 || rep.Machine.CPUs < 1 {
			t.Errorf("report header: got %+v, want %s, started, 1 replica, 2 connections, some CPUs", rep, wantDB)
		}
		var got []string
		for _, r := range rep.Results {
			got = append(got, r.Endpoint)
			if r.Lipa.Requests == 0 || r.Lipa.Errors != 0 || r.Lipa.PerSec <= 0 || r.Lipa.P99ms < r.Lipa.P50ms {
				t.Errorf("%s: Lipa got %+v, want requests served without errors and p50 ≤ p99", r.Endpoint, r.Lipa)
			}
			if r.Minimal == nil || r.Minimal.Requests == 0 || r.Minimal.Errors != 0 || r.Ratio <= 0 || r.MinimalShape == "" {
				t.Errorf("%s: minimal server got %+v, ratio %v, shape %q; want requests served without errors and a ratio", r.Endpoint, r.Minimal, r.Ratio, r.MinimalShape)
			}
			if _, hasGoal := benchGoals[r.Endpoint]; hasGoal != (r.GoalMet != nil) || hasGoal != (r.GoalRatio > 0) {
				t.Errorf("%s: got goal %v (met %v), want a goal exactly for verify, claim, stk-callback and c2b", r.Endpoint, r.GoalRatio, r.GoalMet)
			}
		}
		if strings.Join(got, ",") != strings.Join(benchOrder, ",") {
			t.Errorf("endpoints: got %v, want %v", got, benchOrder)
		}
		if rep.LipaRSSMiB <= 0 || rep.LipaPeakRSSMiB < rep.LipaRSSMiB || rep.RSSGoalMiB != benchRSSGoalMiB {
			t.Errorf("memory: got RSS %v, peak %v, goal %v; want both measured and the goal %d", rep.LipaRSSMiB, rep.LipaPeakRSSMiB, rep.RSSGoalMiB, benchRSSGoalMiB)
		}
	})
	t.Run("text", func(t *testing.T) {
		cmd := exec.Command(bin, "bench", "--duration", "200ms", "--warmup", "0s", "--connections", "2", "--seed", "20",
			"--endpoints", "c2b,verify", "--minimal=false")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("lipa bench: %v\n%s", err, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"lipa bench: started, sqlite, 1 replica(s), 2 connections", "Lipa req/s", "p99 ms", "ratio",
			"Lipa memory after the load: RSS"} {
			if !strings.Contains(out, want) {
				t.Errorf("lipa bench output: got\n%s\nwant it to contain %q", out, want)
			}
		}
		rows := map[string]int{}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				rows[f[0]] = len(f)
			}
		}
		// endpoint, 5 columns of Lipa's, |, 5 of the minimal server's, |, ratio, goal
		for _, ep := range []string{"c2b", "verify"} {
			if rows[ep] != 15 {
				t.Errorf("lipa bench output: got\n%s\nwant a %s row of 15 columns", out, ep)
			}
		}
	})
}

// TestBenchUsage: flags that cannot work together are usage errors, before
// anything is started.
func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--endpoints", "verify,refund"},
		{"bench", "--url", "http://127.0.0.1:1"},
		{"bench", "--replicas", "3"},
		{"bench", "--pid", "1"},
		{"bench", "--connections", "0"},
		{"bench", "--database-url", "mysql://x"},
		{"bench", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, lookupIn(map[string]string{}), &stdout, &stderr); code != 2 {
			t.Errorf("lipa %s: got exit code %d (%s), want 2", strings.Join(args, " "), code, stderr.String())
		}
	}
}
