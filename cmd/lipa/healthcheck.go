package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck runs `lipa healthcheck [--url URL]`: it asks the Lipa
// listening at LISTEN_ADDR on this machine (or the one at URL) whether it is
// ready, with GET /readyz, and succeeds only on a 200 within 5 s, printing
// the answer. Container health checks use it: Lipa's image has no shell and
// no HTTP client.
func cmdHealthcheck(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "base URL of the Lipa to ask (default: LISTEN_ADDR on this machine)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() != 0 {
		return usageError("usage: lipa healthcheck [--url URL]")
	}
	if *base == "" {
		u, err := listenURL(cfg.ListenAddr)
		if err != nil {
			return err
		}
		*base = u
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	target := strings.TrimSuffix(*base, "/") + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", *base, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: GET %s answered %d %s", target, resp.StatusCode, answer)
	}
	fmt.Fprintln(stdout, answer)
	return nil
}

// listenURL returns the http URL on which a process on this machine reaches
// a server listening on addr (LISTEN_ADDR's form, host:port): an empty or
// unspecified host (0.0.0.0, ::) becomes 127.0.0.1.
func listenURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("LISTEN_ADDR %q is not a host:port this command can reach; pass --url", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
