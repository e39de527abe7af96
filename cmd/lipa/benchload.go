package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loadShape is one kind of request `lipa bench` sends: how to build the
// i-th request, and what to do with its answer.
type loadShape struct {
	// request returns the i-th request's method, path (with query) and
	// body; ok false means there is no i-th request (a finite pool, such
	// as payments to claim, is used up), which ends the run.
	request func(i int64) (method, path string, body []byte, ok bool)
	// answered, when set, sees each answer (status and body) of request
	// i, for shapes that keep what Lipa answers (an STK push's IDs).
	answered func(i int64, status int, body []byte)
	// okStatus reports whether a status counts as served; default 2xx.
	okStatus func(status int) bool
}

// loadResult is what one run of a shape against one server measured.
type loadResult struct {
	Requests int64   `json:"requests"`    // answers counted as served (after the warm-up)
	Errors   int64   `json:"errors"`      // other answers and transport errors (after the warm-up)
	Seconds  float64 `json:"seconds"`     // measured time
	PerSec   float64 `json:"per_second"`  // Requests / Seconds
	P50ms    float64 `json:"p50_ms"`      // median latency of served requests, milliseconds
	P99ms    float64 `json:"p99_ms"`      // 99th percentile, milliseconds
	CPUus    float64 `json:"cpu_us"`      // server CPU (user+system) per served request, microseconds; 0 when unknown
	FirstErr string  `json:"first_error"` // the first error or unexpected status seen, for the report
}

// runLoad sends shape's requests to the servers at bases (connections
// spread round-robin over them) from conns connections, each with one
// request in flight, for warmup and then duration, or until the shape's
// pool is used up. Answers during the warm-up are not counted. cpu, when
// set, returns the servers' CPU time so far, to report CPU per request.
func runLoad(ctx context.Context, bases []string, key string, conns int, warmup, duration time.Duration, shape loadShape, cpu func() time.Duration) (loadResult, error) {
	okStatus := shape.okStatus
	if okStatus == nil {
		okStatus = func(s int) bool { return s >= 200 && s < 300 }
	}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var served, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	noteErr := func(s string) { firstErr.CompareAndSwap(nil, &s) }
	var cpuStart time.Duration
	var cpuOnce sync.Once
	markStart := func() {
		cpuOnce.Do(func() {
			if cpu != nil {
				cpuStart = cpu()
			}
		})
	}
	var lastDone atomic.Int64 // UnixNano of the last measured answer
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := bases[w%len(bases)]
			c, err := dialHTTP(base)
			if err != nil {
				errc <- err
				return
			}
			defer func() { c.close() }()
			lat := make([]time.Duration, 0, 4096)
			defer func() {
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if !t0.Before(measureFrom) {
					markStart()
				}
				i := next.Add(1) - 1
				method, path, body, ok := shape.request(i)
				if !ok {
					return
				}
				status, answer, err := c.do(method, path, key, body)
				t1 := time.Now()
				measured := !t0.Before(measureFrom)
				redial := err != nil
				if err != nil && !errors.Is(err, errConnClosed) {
					if measured {
						failed.Add(1)
						noteErr(err.Error())
					}
					c.close()
					if c, err = dialHTTP(base); err != nil {
						errc <- err
						return
					}
					continue
				}
				if redial { // the answer stays readable: it is in the old connection's buffer
					c.close()
					if c, err = dialHTTP(base); err != nil {
						errc <- err
						return
					}
				}
				if shape.answered != nil {
					shape.answered(i, status, answer)
				}
				if !measured {
					continue
				}
				if !okStatus(status) {
					failed.Add(1)
					noteErr(fmt.Sprintf("%s %s: HTTP %d %s", method, redactBenchPath(path), status, truncateBench(answer, 200)))
					continue
				}
				served.Add(1)
				lat = append(lat, t1.Sub(t0))
				lastDone.Store(t1.UnixNano())
			}
		}()
	}
	wg.Wait()
	close(errc)
	var res loadResult
	if err := <-errc; err != nil {
		return res, err
	}
	finished := time.Now()
	if n := lastDone.Load(); n != 0 && time.Unix(0, n).Before(finished) {
		finished = time.Unix(0, n)
	}
	res.Requests, res.Errors = served.Load(), failed.Load()
	res.Seconds = finished.Sub(measureFrom).Seconds()
	if res.Seconds > 0 {
		res.PerSec = float64(res.Requests) / res.Seconds
	}
	if cpu != nil && res.Requests > 0 {
		res.CPUus = float64((cpu() - cpuStart).Microseconds()) / float64(res.Requests)
	}
	slices.Sort(all)
	res.P50ms, res.P99ms = quantileMs(all, 0.50), quantileMs(all, 0.99)
	if p := firstErr.Load(); p != nil {
		res.FirstErr = *p
	}
	return res, nil
}

// quantileMs returns the q-quantile of sorted latencies in milliseconds
// (nearest rank), 0 when there are none.
func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// benchConn is one keep-alive HTTP/1.1 connection with one request in
// flight: requests are written as prepared bytes and answers read with
// http.ReadResponse, which costs the load generator far less CPU than
// net/http's client (on a 2-core machine the generator competes with the
// server for the same cores).
type benchConn struct {
	host string
	nc   net.Conn
	br   *bufio.Reader
	buf  bytes.Buffer // the request being written
	body bytes.Buffer // the answer's body
}

// dialHTTP connects to base ("http://host:port").
func dialHTTP(base string) (*benchConn, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: %q is not an http://host:port URL", base)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", base, err)
	}
	return &benchConn{host: u.Host, nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
}

func (c *benchConn) close() {
	if c != nil && c.nc != nil {
		c.nc.Close()
	}
}

// errConnClosed is an answer that asked to close the connection.
var errConnClosed = errors.New("server closed the connection")

// do sends one request and returns the answer's status and body (valid
// until the next call).
func (c *benchConn) do(method, path, key string, body []byte) (int, []byte, error) {
	b := &c.buf
	b.Reset()
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(path)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(c.host)
	b.WriteString("\r\nUser-Agent: lipa-bench\r\n")
	if key != "" {
		b.WriteString("X-API-KEY: ")
		b.WriteString(key)
		b.WriteString("\r\n")
	}
	if body != nil {
		b.WriteString("Content-Type: application/json\r\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(body)))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.nc.Write(b.Bytes()); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, err
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	if resp.Close {
		return resp.StatusCode, c.body.Bytes(), errConnClosed
	}
	return resp.StatusCode, c.body.Bytes(), nil
}

// redactBenchPath hides a callback token (a path's last segment after
// /callback/ or /confirmation/) in an error shown in the report.
func redactBenchPath(p string) string {
	for _, marker := range []string{"/callback/", "/confirmation/", "/validation/"} {
		if i := bytes.Index([]byte(p), []byte(marker)); i >= 0 && len(p) > i+len(marker) {
			return p[:i+len(marker)] + "…/"
		}
	}
	return p
}

func truncateBench(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
