package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// The request shapes `lipa bench` drives, in the order it runs them: the
// pushes leave PENDING payments for the callbacks, the confirmations leave
// intake payments for verify and claim.
const (
	benchPush     = "stk-push"
	benchCallback = "stk-callback"
	benchC2B      = "c2b"
	benchVerify   = "verify"
	benchClaim    = "claim"
)

var benchOrder = []string{benchPush, benchCallback, benchC2B, benchVerify, benchClaim}

// benchGoals are the targets per endpoint: Lipa's throughput at
// least this share of the minimal server's, and for the app-facing reads
// and claims a 99th percentile latency bound.
var benchGoals = map[string]struct {
	ratio float64
	p99ms float64
}{
	benchVerify:   {0.5, 10},
	benchClaim:    {0.5, 10},
	benchCallback: {0.5, 0},
	benchC2B:      {0.5, 0},
}

// benchRSSGoalMiB bounds a Lipa process's resident memory after the load.
const benchRSSGoalMiB = 40

// benchOptions is `lipa bench`'s command line.
type benchOptions struct {
	URL           string // a running Lipa to drive; empty: start one
	PID           int    // with URL: its process, for CPU and memory
	APIKey        string
	CallbackToken string
	DatabaseURL   string // the database of the Lipa bench starts (default a new SQLite file), and of the minimal server
	Connections   int
	Duration      time.Duration
	Warmup        time.Duration
	Endpoints     []string
	Replicas      int
	Seed          int
	Minimal       bool
	MinimalRows   int
	JSON          bool
}

// benchRow is one endpoint's result.
type benchRow struct {
	Endpoint string      `json:"endpoint"`
	Lipa     loadResult  `json:"lipa"`
	Minimal  *loadResult `json:"minimal,omitempty"` // nil when the minimal server was not run
	// MinimalShape names the minimal server's request the endpoint is
	// compared with: verify, claim, or ingest (one INSERT of the body).
	MinimalShape string   `json:"minimal_shape,omitempty"`
	Ratio        float64  `json:"ratio"`            // Lipa's throughput / the minimal server's; 0 without it
	GoalRatio    float64  `json:"goal_ratio"`       // 0: no goal (or no minimal server to judge it by)
	GoalP99ms    float64  `json:"goal_p99_ms"`      // 0: no goal
	GoalMet      *bool    `json:"goal_met"`         // nil: no goal, or no minimal server
	Note         string   `json:"note,omitempty"`   // what the numbers mean beyond the columns
	Missed       []string `json:"missed,omitempty"` // the goals not met
}

// benchReport is what `lipa bench --json` prints.
type benchReport struct {
	Machine struct {
		CPUs      int    `json:"cpus"`
		CPUModel  string `json:"cpu_model"`
		OS        string `json:"os"`
		GoVersion string `json:"go_version"`
	} `json:"machine"`
	Database    string     `json:"database"` // sqlite or postgres
	Target      string     `json:"target"`   // "started" or the --url driven
	Replicas    int        `json:"replicas"`
	Connections int        `json:"connections"`
	Seconds     float64    `json:"seconds_per_endpoint"`
	Warmup      float64    `json:"warmup_seconds"`
	Results     []benchRow `json:"results"`
	// LipaRSSMiB and LipaPeakRSSMiB are the largest resident set and
	// peak resident set of the Lipa processes bench started, after the
	// load (0 when it drove a running Lipa).
	LipaRSSMiB     float64 `json:"lipa_rss_mib"`
	LipaPeakRSSMiB float64 `json:"lipa_peak_rss_mib"`
	RSSGoalMiB     float64 `json:"rss_goal_mib"`
}

const benchUsage = `usage: lipa bench [--connections 32] [--duration 5s] [--warmup 1s] [--endpoints LIST]
                  [--database-url URL] [--replicas N] [--seed N] [--minimal=false] [--json]
       lipa bench --url URL --api-key KEY [--callback-token TOKEN] [--pid PID] …

Drives Lipa with STK push (simulator), STK callback, C2B confirmation,
verify and claim load, and the same shapes against a minimal server (net/http
and one prepared statement per request) in the same run; prints throughput,
p50/p99 latency, server CPU per request and the ratio per endpoint.
`

// cmdBench runs `lipa bench`: see benchUsage and BENCHMARKS.md.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "minimal-server" {
		return cmdBenchMinimal(ctx, args[1:], stdout, stderr)
	}
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	fs.StringVar(&o.URL, "url", "", "drive the running Lipa at this base URL instead of starting one")
	fs.StringVar(&o.APIKey, "api-key", "", "with --url: an app's API key (its rate limit, LIPA_APP_RATE_LIMIT, applies)")
	fs.IntVar(&o.PID, "pid", 0, "with --url: the process id of that Lipa (on this machine), to report its CPU per request and memory")
	fs.StringVar(&o.CallbackToken, "callback-token", "", "with --url: its LIPA_CALLBACK_TOKEN, for STK callback and C2B load and for seeding payments")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "database of the Lipa bench starts and of the minimal server (default: new SQLite files in a temporary directory)")
	fs.IntVar(&o.Connections, "connections", 32, "concurrent connections, each with one request in flight")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "measured time per endpoint and server")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "load before each measurement that is not counted")
	endpoints := fs.String("endpoints", strings.Join(benchOrder, ","), "comma-separated endpoints to drive")
	fs.IntVar(&o.Replicas, "replicas", 1, "Lipa processes to start on one PostgreSQL database (load spread over them)")
	fs.IntVar(&o.Seed, "seed", 5000, "C2B payments to seed for verify and claim when the c2b load left fewer")
	fs.BoolVar(&o.Minimal, "minimal", true, "also run the minimal server, and report ratios")
	fs.IntVar(&o.MinimalRows, "minimal-rows", 300_000, "SUCCESS payments the minimal server seeds (its claims take each once)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(benchUsage + help.String())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("bench: unexpected argument %q\n%s", fs.Arg(0), benchUsage))
	}
	for _, e := range strings.Split(*endpoints, ",") {
		e = strings.TrimSpace(e)
		if !containsString(benchOrder, e) {
			return usageError(fmt.Sprintf("bench: --endpoints: %q is not one of %s", e, strings.Join(benchOrder, ", ")))
		}
		o.Endpoints = append(o.Endpoints, e)
	}
	switch {
	case o.Connections < 1:
		return usageError("bench: --connections must be at least 1")
	case o.Duration <= 0 || o.Warmup < 0:
		return usageError("bench: --duration must be positive and --warmup not negative")
	case o.MinimalRows < 1:
		return usageError("bench: --minimal-rows must be at least 1")
	case o.Replicas < 1:
		return usageError("bench: --replicas must be at least 1")
	case o.URL != "" && o.APIKey == "":
		return usageError("bench: --url needs --api-key")
	case o.PID != 0 && o.URL == "":
		return usageError("bench: --pid goes with --url (bench knows the processes it starts)")
	case o.URL != "" && o.Replicas != 1:
		return usageError("bench: --replicas starts Lipa processes; it cannot be used with --url")
	case o.Replicas > 1 && !strings.HasPrefix(o.DatabaseURL, "postgres"):
		return usageError("bench: --replicas above 1 needs a PostgreSQL --database-url (replicas share one database)")
	case o.DatabaseURL != "" && !strings.HasPrefix(o.DatabaseURL, "sqlite:") && !strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://"):
		return usageError("bench: --database-url must be sqlite:PATH or postgres://…")
	}
	rep, err := runBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(stdout, rep)
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// benchEnv is what one bench run started and knows.
type benchEnv struct {
	o        benchOptions
	dir      string
	bases    []string // Lipa's base URLs
	key      string
	token    string
	lipa     []*benchChild
	minimal  *benchChild
	children []*benchChild // everything started, stopped at the end
	run      string        // 3 random characters that keep this run's receipts and phones apart from earlier runs'
	log      io.Writer

	mu       sync.Mutex
	pushes   []benchPushed // STK pushes Lipa accepted, for the callbacks
	receipts []string      // intake payments Lipa holds, for verify and claim
}

// benchPushed is an STK push Lipa accepted.
type benchPushed struct {
	checkout, merchant, phone string
}

// benchChild is a process bench started (or, with --pid, was told of).
type benchChild struct {
	name string
	cmd  *exec.Cmd // nil for --pid
	pid  int
	url  string
}

// cpu returns the process's CPU time so far (user and system), from
// /proc; zero where there is no /proc.
func (c *benchChild) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// memory returns the process's resident set and its peak, in MiB.
func (c *benchChild) memory() (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	return rss, peak
}

func (c *benchChild) stop() {
	if c.cmd == nil || c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// sumCPU returns a function adding up the CPU time of children.
func sumCPU(children []*benchChild) func() time.Duration {
	return func() time.Duration {
		var t time.Duration
		for _, c := range children {
			t += c.cpu()
		}
		return t
	}
}

// runBench sets up what o asks for, drives each endpoint and returns the
// report. Everything it started is stopped before it returns; its
// temporary directory is removed unless the run failed (its logs are
// there).
func runBench(ctx context.Context, o benchOptions, log io.Writer) (rep *benchReport, err error) {
	e := &benchEnv{o: o, log: log, key: o.APIKey, token: o.CallbackToken, run: benchRunID()}
	if e.dir, err = os.MkdirTemp("", "lipa-bench-*"); err != nil {
		return nil, err
	}
	defer func() {
		for i := len(e.children) - 1; i >= 0; i-- {
			e.children[i].stop()
		}
		if err == nil {
			os.RemoveAll(e.dir)
		} else {
			err = fmt.Errorf("%w (logs kept in %s)", err, e.dir)
		}
	}()
	if err := e.start(ctx); err != nil {
		return nil, err
	}
	rep = &benchReport{Target: "started", Replicas: o.Replicas, Connections: o.Connections,
		Seconds: o.Duration.Seconds(), Warmup: o.Warmup.Seconds(), RSSGoalMiB: benchRSSGoalMiB}
	rep.Machine.CPUs, rep.Machine.CPUModel = runtime.NumCPU(), cpuModel()
	rep.Machine.OS, rep.Machine.GoVersion = runtime.GOOS+"/"+runtime.GOARCH, runtime.Version()
	rep.Database = "sqlite"
	if strings.HasPrefix(o.DatabaseURL, "postgres") {
		rep.Database = "postgres"
	}
	if o.URL != "" {
		rep.Target, rep.Database = o.URL, "unknown"
	}
	for _, ep := range benchOrder {
		if !containsString(o.Endpoints, ep) {
			continue
		}
		if ep == benchVerify || ep == benchClaim {
			if err := e.seed(ctx); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(log, "bench: %s…\n", ep)
		row, err := e.endpoint(ctx, ep)
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", ep, err)
		}
		rep.Results = append(rep.Results, row)
	}
	for _, c := range e.lipa {
		rss, peak := c.memory()
		rep.LipaRSSMiB, rep.LipaPeakRSSMiB = max(rep.LipaRSSMiB, rss), max(rep.LipaPeakRSSMiB, peak)
	}
	return rep, nil
}

// benchRunID returns 3 random characters of A–Z.
func benchRunID() string {
	b := make([]byte, 3)
	rand.Read(b)
	for i := range b {
		b[i] = 'A' + b[i]%26
	}
	return string(b)
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// start starts what the run needs: unless --url, the Daraja simulator and
// o.Replicas Lipa processes on a new SQLite file or --database-url, with
// an app for the load; and the minimal server.
func (e *benchEnv) start(ctx context.Context) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find the lipa binary: %w", err)
	}
	dbURL := e.o.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(e.dir, "lipa.db")
	}
	if e.o.URL != "" {
		e.bases = []string{strings.TrimSuffix(e.o.URL, "/")}
		if err := waitHTTP(ctx, e.bases[0]+"/healthz", 10*time.Second); err != nil {
			return err
		}
		if e.o.PID != 0 {
			e.lipa = []*benchChild{{name: "lipa", pid: e.o.PID, url: e.bases[0]}}
		}
	} else {
		e.token = "bench" + strings.ToLower(benchRunID()) + strconv.FormatInt(time.Now().UnixNano(), 36)
		simAddr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		if _, err := e.startChild(ctx, "simulator", bin, []string{"simulator", "--listen", simAddr}, e.lipaEnv(dbURL, "")); err != nil {
			return err
		}
		if err := waitTCP(ctx, simAddr, 30*time.Second); err != nil {
			return fmt.Errorf("bench: the simulator did not start: %w", err)
		}
		create := exec.CommandContext(ctx, bin, "apps", "create", "bench-"+strings.ToLower(e.run)+strconv.FormatInt(time.Now().Unix()%100000, 10), "--json")
		create.Dir, create.Env = e.dir, e.lipaEnv(dbURL, "")
		out, err := create.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("bench: lipa apps create: %w: %s", err, ee.Stderr)
			}
			return fmt.Errorf("bench: lipa apps create: %w", err)
		}
		var created struct {
			APIKey string `json:"api_key"`
		}
		if err := json.Unmarshal(out, &created); err != nil || created.APIKey == "" {
			return fmt.Errorf("bench: lipa apps create --json answered %q", out)
		}
		e.key = created.APIKey
		for i := range e.o.Replicas {
			addr, err := freeLoopbackAddr()
			if err != nil {
				return err
			}
			env := append(e.lipaEnv(dbURL, "http://"+simAddr), "LISTEN_ADDR="+addr, fmt.Sprintf("LOG_FILE=%s", filepath.Join(e.dir, fmt.Sprintf("lipa%d.log", i))))
			c, err := e.startChild(ctx, fmt.Sprintf("lipa%d", i), bin, []string{"serve"}, env)
			if err != nil {
				return err
			}
			c.url = "http://" + addr
			e.lipa = append(e.lipa, c)
			e.bases = append(e.bases, c.url)
		}
		for _, c := range e.lipa {
			if err := waitHTTP(ctx, c.url+"/readyz", 60*time.Second); err != nil {
				return fmt.Errorf("bench: Lipa did not become ready: %w", err)
			}
		}
	}
	if !e.o.Minimal {
		return nil
	}
	mdb := e.o.DatabaseURL
	if !strings.HasPrefix(mdb, "postgres") {
		mdb = "sqlite:" + filepath.Join(e.dir, "minimal.db")
	}
	c, err := e.startChild(ctx, "minimal", bin, []string{"bench", "minimal-server", "--database-url", mdb,
		"--rows", strconv.Itoa(e.o.MinimalRows), "--schema", "lipa_bench_minimal_" + strings.ToLower(e.run)}, e.lipaEnv(dbURL, ""))
	if err != nil {
		return err
	}
	e.minimal = c
	return nil
}

// lipaEnv is the environment of the processes bench starts: nothing of
// bench's own environment but PATH and HOME (so no .env or variable of the
// operator's changes what is measured), simulator mode, no per-app rate
// limit, and no reconciliation during the run.
func (e *benchEnv) lipaEnv(dbURL, simURL string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "DATABASE_URL=" + dbURL,
		"MPESA_ENVIRONMENT=simulator", "LIPA_CALLBACK_TOKEN=" + e.token, "LIPA_APP_RATE_LIMIT=0",
		"LIPA_RECONCILE_AFTER=1h", "LIPA_SIMULATOR_CALLBACK_DELAY=1h", "LOG_FILE=" + filepath.Join(e.dir, "cli.log")}
	if simURL != "" {
		env = append(env, "MPESA_BASE_URL="+simURL)
	}
	return env
}

// startChild starts bin with args in bench's directory, its output in a
// file there; a "minimal" child's first line of output names its URL.
func (e *benchEnv) startChild(ctx context.Context, name, bin string, args, env []string) (*benchChild, error) {
	logf, err := os.Create(filepath.Join(e.dir, name+".out"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env, cmd.Stderr = e.dir, env, logf
	c := &benchChild{name: name, cmd: cmd}
	var stdout io.ReadCloser
	if name == "minimal" {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	c.pid = cmd.Process.Pid
	e.children = append(e.children, c)
	if stdout == nil {
		return c, nil
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			got <- sc.Text()
		}
		close(got)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-got:
		if u, found := strings.CutPrefix(line, "listening "); ok && found {
			c.url = u
			return c, nil
		}
		out, _ := os.ReadFile(filepath.Join(e.dir, name+".out"))
		return nil, fmt.Errorf("bench: the minimal server did not start: %q %s", line, out)
	case <-time.After(120 * time.Second):
		return nil, errors.New("bench: the minimal server did not start within 2 minutes")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// freeLoopbackAddr returns a free port on 127.0.0.1.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP waits until u answers 200.
func waitHTTP(ctx context.Context, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", u, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// benchID returns a 10-character M-Pesa-shaped receipt for index i: the
// prefix letter, the run's 3 characters and i in base 36 (6 digits).
func (e *benchEnv) benchID(prefix byte, i int64) string {
	s := strings.ToUpper(strconv.FormatInt(i, 36))
	return string(prefix) + e.run + strings.Repeat("0", max(0, 6-len(s))) + s
}

// phone returns the i-th distinct customer phone of this run (one PENDING
// prompt per phone, so each push needs its own), never one of the
// simulator's magic 2547000000xx numbers.
func (e *benchEnv) phone(i int64) string {
	base := int64(e.run[0])*1_000_003 + int64(e.run[1])*7919 + int64(e.run[2])
	return "2547" + strconv.FormatInt(10_000_000+(base*1009+i)%89_999_999, 10)
}

func (e *benchEnv) c2bBody(i int64) []byte {
	return fmt.Appendf(nil, `{"TransactionType":"Pay Bill","TransID":%q,"TransTime":"20261207101500","TransAmount":"10.00","BusinessShortCode":"174379","BillRefNumber":%q,"InvoiceNumber":"","OrgAccountBalance":"","ThirdPartyTransID":"","MSISDN":"254708374149","FirstName":"Bench","MiddleName":"","LastName":""}`,
		e.benchID('B', i), e.benchID('A', i))
}

func (e *benchEnv) callbackBody(p benchPushed, receipt string) []byte {
	return fmt.Appendf(nil, `{"Body":{"stkCallback":{"MerchantRequestID":%q,"CheckoutRequestID":%q,"ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[{"Name":"Amount","Value":10},{"Name":"MpesaReceiptNumber","Value":%q},{"Name":"TransactionDate","Value":20261207101500},{"Name":"PhoneNumber","Value":%s}]}}}}`,
		p.merchant, p.checkout, receipt, p.phone)
}

func (e *benchEnv) pushBody(i int64) []byte {
	return fmt.Appendf(nil, `{"phone_number":%q,"amount":10,"reference":%q}`, e.phone(i), e.benchID('P', i)) // M-Pesa allows 12 characters
}

// c2bShape posts C2B confirmations with new TransIDs from start on,
// noting each one Lipa acknowledged as a receipt for verify and claim;
// limit > 0 stops after that many.
func (e *benchEnv) c2bShape(start, limit int64) loadShape {
	path := "/api/c2b/confirmation/" + e.token + "/"
	return loadShape{
		request: func(i int64) (string, string, []byte, bool) {
			if limit > 0 && i >= limit {
				return "", "", nil, false
			}
			return "POST", path, e.c2bBody(start + i), true
		},
		answered: func(i int64, status int, body []byte) {
			if status == http.StatusOK {
				e.mu.Lock()
				e.receipts = append(e.receipts, e.benchID('B', start+i))
				e.mu.Unlock()
			}
		},
	}
}

// seed makes sure Lipa holds at least o.Seed intake payments of this run
// for verify and claim, posting the C2B confirmations missing (not
// measured).
func (e *benchEnv) seed(ctx context.Context) error {
	e.mu.Lock()
	have := len(e.receipts)
	e.mu.Unlock()
	if have >= e.o.Seed {
		return nil
	}
	if e.token == "" {
		return errors.New("bench: verify and claim need payments, which bench makes with C2B confirmations: give --callback-token")
	}
	fmt.Fprintf(e.log, "bench: seeding %d C2B payments…\n", e.o.Seed-have)
	_, err := runLoad(ctx, e.bases, "", min(e.o.Connections, 8), 0, time.Hour, e.c2bShape(1<<30+int64(have), int64(e.o.Seed-have)), nil)
	return err
}

// endpoint drives one endpoint against the minimal server, then Lipa.
func (e *benchEnv) endpoint(ctx context.Context, ep string) (benchRow, error) {
	row := benchRow{Endpoint: ep}
	var lipaShape, minShape loadShape
	minPath := "/ingest"
	row.MinimalShape = "ingest"
	var minBody func(i int64) []byte
	switch ep {
	case benchPush:
		lipaShape = loadShape{
			request: func(i int64) (string, string, []byte, bool) { return "POST", "/api/stk-push/", e.pushBody(i), true },
			answered: func(i int64, status int, body []byte) {
				var a struct {
					Checkout string `json:"checkout_request_id"`
					Merchant string `json:"merchant_request_id"`
				}
				if status == http.StatusOK && json.Unmarshal(body, &a) == nil && a.Checkout != "" {
					e.mu.Lock()
					e.pushes = append(e.pushes, benchPushed{checkout: a.Checkout, merchant: a.Merchant, phone: e.phone(i)})
					e.mu.Unlock()
				}
			},
		}
		minBody = e.pushBody
		row.Note = "each push is a Daraja call to the simulator (a separate process) between two transactions; compared with one INSERT"
	case benchCallback:
		if e.token == "" {
			return row, errors.New("STK callbacks need --callback-token")
		}
		e.mu.Lock()
		pushes := e.pushes
		e.mu.Unlock()
		if len(pushes) == 0 {
			return row, errors.New("no STK push was accepted, so there is nothing to call back; include stk-push in --endpoints")
		}
		path := "/api/stk/callback/" + e.token + "/"
		lipaShape = loadShape{request: func(i int64) (string, string, []byte, bool) {
			if i >= int64(len(pushes)) {
				return "", "", nil, false
			}
			return "POST", path, e.callbackBody(pushes[i], e.benchID('C', i)), true
		}}
		minBody = func(i int64) []byte {
			return e.callbackBody(benchPushed{checkout: "ws_CO_" + e.benchID('W', i), merchant: "29115-34620561-1", phone: "254708374149"}, e.benchID('C', i))
		}
		row.Note = fmt.Sprintf("one success callback for each of the %d pushes the stk-push load left PENDING; the run ends when all are sent", len(pushes))
	case benchC2B:
		if e.token == "" {
			return row, errors.New("C2B confirmations need --callback-token")
		}
		e.mu.Lock()
		start := int64(len(e.receipts))
		e.mu.Unlock()
		lipaShape = e.c2bShape(start, 0)
		minBody = e.c2bBody
	case benchVerify:
		e.mu.Lock()
		receipts := e.receipts
		e.mu.Unlock()
		n := int64(len(receipts))
		lipaShape = loadShape{request: func(i int64) (string, string, []byte, bool) {
			return "GET", "/api/payments/verify/?receipt=" + receipts[i%n], nil, true
		}}
		row.MinimalShape = "verify"
		minShape = loadShape{request: func(i int64) (string, string, []byte, bool) {
			return "GET", fmt.Sprintf("/verify?receipt=M%09d", i%n), nil, true
		}}
		row.Note = fmt.Sprintf("by receipt, over %d intake payments", n)
	case benchClaim:
		e.mu.Lock()
		receipts := e.receipts
		e.receipts = nil // claimed now: verify after this would see claimed payments
		e.mu.Unlock()
		n := int64(len(receipts))
		lipaShape = loadShape{request: func(i int64) (string, string, []byte, bool) {
			if i >= n {
				return "", "", nil, false
			}
			return "POST", "/api/payments/claim/", fmt.Appendf(nil, `{"receipt":%q}`, receipts[i]), true
		}}
		row.MinimalShape = "claim"
		rows := int64(e.o.MinimalRows)
		minShape = loadShape{request: func(i int64) (string, string, []byte, bool) {
			if i >= rows {
				return "", "", nil, false
			}
			return "POST", "/claim", fmt.Appendf(nil, `{"receipt":"M%09d"}`, i), true
		}}
		row.Note = fmt.Sprintf("by receipt, each of %d intake payments once; the run ends when all are claimed", n)
	}
	if minBody != nil {
		minShape = loadShape{request: func(i int64) (string, string, []byte, bool) { return "POST", minPath, minBody(i), true }}
	}
	if e.minimal != nil {
		res, err := runLoad(ctx, []string{e.minimal.url}, e.key, e.o.Connections, e.o.Warmup, e.o.Duration, minShape, e.minimal.cpu)
		if err != nil {
			return row, fmt.Errorf("minimal server: %w", err)
		}
		row.Minimal = &res
	}
	var cpu func() time.Duration
	if len(e.lipa) > 0 {
		cpu = sumCPU(e.lipa)
	}
	res, err := runLoad(ctx, e.bases, e.key, e.o.Connections, e.o.Warmup, e.o.Duration, lipaShape, cpu)
	if err != nil {
		return row, err
	}
	row.Lipa = res
	if row.Minimal != nil && row.Minimal.PerSec > 0 {
		row.Ratio = res.PerSec / row.Minimal.PerSec
	}
	if g, ok := benchGoals[ep]; ok && row.Minimal != nil { // judged only against the minimal server
		row.GoalRatio, row.GoalP99ms = g.ratio, g.p99ms
		if row.Ratio < g.ratio {
			row.Missed = append(row.Missed, fmt.Sprintf("ratio %.2f < %.2f", row.Ratio, g.ratio))
		}
		if g.p99ms > 0 && res.P99ms > g.p99ms {
			row.Missed = append(row.Missed, fmt.Sprintf("p99 %.1f ms > %.0f ms", res.P99ms, g.p99ms))
		}
		met := len(row.Missed) == 0 && res.Errors == 0
		row.GoalMet = &met
	}
	return row, nil
}

// printBench writes the report as text.
func printBench(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "lipa bench: %s, %s, %d replica(s), %d connections, %s per endpoint after a %s warm-up\n",
		r.Target, r.Database, r.Replicas, r.Connections, time.Duration(r.Seconds*float64(time.Second)), time.Duration(r.Warmup*float64(time.Second)))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\tLipa req/s\tp50 ms\tp99 ms\tCPU µs/req\terrors\t|\tminimal\treq/s\tp50 ms\tp99 ms\tCPU µs/req\t|\tratio\tgoal\t")
	for _, row := range r.Results {
		l := row.Lipa
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t%d\t|\t", row.Endpoint, l.PerSec, l.P50ms, l.P99ms, l.CPUus, l.Errors)
		if m := row.Minimal; m != nil {
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t|\t%.2f\t", row.MinimalShape, m.PerSec, m.P50ms, m.P99ms, m.CPUus, row.Ratio)
		} else {
			fmt.Fprint(tw, "-\t-\t-\t-\t-\t|\t-\t")
		}
		switch {
		case row.GoalMet == nil:
			fmt.Fprint(tw, "-\t\n")
		case *row.GoalMet:
			fmt.Fprint(tw, "met\t\n")
		default:
			fmt.Fprint(tw, "NOT met\t\n")
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, row := range r.Results {
		if row.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", row.Endpoint, row.Note)
		}
		for _, m := range row.Missed {
			fmt.Fprintf(w, "%s: goal missed: %s\n", row.Endpoint, m)
		}
		if row.Lipa.FirstErr != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", row.Endpoint, row.Lipa.FirstErr)
		}
		if row.Minimal != nil && row.Minimal.FirstErr != "" {
			fmt.Fprintf(w, "%s: minimal server's first error: %s\n", row.Endpoint, row.Minimal.FirstErr)
		}
	}
	if r.LipaRSSMiB > 0 {
		verdict := "met"
		if r.LipaRSSMiB > r.RSSGoalMiB {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "Lipa memory after the load: RSS %.1f MiB (peak %.1f MiB); goal ≤ %.0f MiB: %s\n", r.LipaRSSMiB, r.LipaPeakRSSMiB, r.RSSGoalMiB, verdict)
	}
}
