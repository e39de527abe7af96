package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogToStdout: LOG_FILE=- writes the service's log as JSON lines to
// stdout, nothing to stderr, and creates no file (named "-" or any other).
func TestLogToStdout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg, err := loadConfig(lookupIn(map[string]string{"LOG_FILE": "-"}), "")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	log, closeLog, err := newLogger(cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("newLogger: got error %v, want nil", err)
	}
	log.Info("listening", "addr", "127.0.0.1:8000")
	log.Warn("rejected a Safaricom-facing request", "reason", "wrong callback token in the path")
	closeLog()

	lines := 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l["msg"] == nil {
			t.Errorf("stdout line %q: want a JSON log record (%v)", sc.Text(), err)
		}
		lines++
	}
	if lines != 2 {
		t.Errorf("stdout: got %d JSON lines, want 2", lines)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: got %q, want nothing (no duplicate text)", stderr.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files created: got %v, want none", entries)
	}
}

// TestLogFileRotates: LOG_FILE is rotated by size (LOG_MAX_SIZE_MB), keeps
// LOG_MAX_BACKUPS old files and the file's mode, and stderr still gets the
// readable text.
func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payments.log")
	cfg, err := loadConfig(lookupIn(map[string]string{"LOG_FILE": path, "LOG_MAX_SIZE_MB": "1", "LOG_MAX_BACKUPS": "2", "LOG_COMPRESS": "false"}), "")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	log, closeLog, err := newLogger(cfg, &bytes.Buffer{}, &stderr)
	if err != nil {
		t.Fatalf("newLogger: got error %v, want nil", err)
	}
	filler := strings.Repeat("x", 1000)
	for range 4000 { // about 4 MB
		log.Info("request refused", "message", filler)
	}
	closeLog()

	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("LOG_FILE: %v", err)
	}
	if info.Size() > 1<<20 {
		t.Errorf("LOG_FILE: got %d bytes, want at most 1 MiB", info.Size())
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("LOG_FILE mode: got %v, want 0640", info.Mode().Perm())
	}
	// lumberjack removes old backups in a goroutine of its own after each
	// rotation: wait for it to catch up before counting.
	var backups []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		backups, _ = filepath.Glob(filepath.Join(dir, "payments-*.log"))
		if (len(backups) > 0 && len(backups) <= 2) || time.Now().After(deadline) {
			break
		}
	}
	if len(backups) == 0 || len(backups) > 2 {
		t.Errorf("rotated files: got %v, want 1 or 2 (LOG_MAX_BACKUPS=2)", backups)
	}
	if !strings.Contains(stderr.String(), "request refused") {
		t.Errorf("stderr: got no text line, want the readable log")
	}
}

// TestLogConfig: the rotation settings' defaults and refusals.
func TestLogConfig(t *testing.T) {
	cfg, err := loadConfig(lookupIn(map[string]string{}), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogMaxSizeMB != 100 || cfg.LogMaxBackups != 10 || cfg.LogMaxAgeDays != 0 || !cfg.LogCompress {
		t.Errorf("defaults: got size %d MB, %d backups, %d days, compress %v; want 100, 10, 0, true",
			cfg.LogMaxSizeMB, cfg.LogMaxBackups, cfg.LogMaxAgeDays, cfg.LogCompress)
	}
	for _, c := range []struct{ name, value string }{
		{"LOG_MAX_SIZE_MB", "0"}, {"LOG_MAX_SIZE_MB", "1.5"}, {"LOG_MAX_BACKUPS", "-1"}, {"LOG_MAX_AGE_DAYS", "a week"}, {"LOG_COMPRESS", "gzip"},
	} {
		_, err := loadConfig(lookupIn(map[string]string{c.name: c.value}), "")
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: got error %v, want one naming %s", c.name, c.value, err, c.name)
		}
	}
}
