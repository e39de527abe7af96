package main

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lipa-gateway/lipa/internal/api"
)

// The deployment recipes (deploy/, the Dockerfile) set Lipa's environment
// variables and wire ports between Lipa, its proxy and its health checks.
// These tests read them as files and hold them to the code: every variable
// they set for Lipa is one that cmd/lipa/config.go reads and README.md's
// configuration reference documents, and every port agrees with
// LISTEN_ADDR's default.

// repoRoot is the repository's root, seen from this package's directory.
const repoRoot = "../.."

var (
	// settingShape is the shape of an environment variable name.
	settingShape = regexp.MustCompile(`^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$`)
	// lipaPrefix marks a name as one of Lipa's, wherever it is set.
	lipaPrefix = regexp.MustCompile(`^(?:MPESA|LIPA|DATABASE|LISTEN|LOG)_`)
)

// knownSettings returns the environment variables Lipa reads: every string
// literal in config.go (and console.go, which reads the console's
// LIPA_ADMIN_* settings) shaped like a variable name. It fails the test
// when loadConfig looks up a name that is not among them, so that the list
// cannot silently fall behind the loader.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, file := range []string{"config.go", "console.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && settingShape.MatchString(s) {
					known[s] = true
				}
			}
			return true
		})
	}
	var asked []string
	if _, err := loadConfig(func(name string) (string, bool) { asked = append(asked, name); return "", false }, ""); err != nil {
		t.Fatalf("loadConfig with an empty environment: %v", err)
	}
	if len(asked) == 0 {
		t.Fatal("loadConfig looked up no variable; the recording lookup no longer sees its reads")
	}
	for _, name := range asked {
		if !known[name] {
			t.Fatalf("loadConfig reads %s, which is not a string literal in config.go or console.go; keep setting names there so this test can find them", name)
		}
	}
	return known
}

// configReference reads README.md's Configuration section: the variables
// its table documents, and each one's default as written there (the
// backticked text of the second column).
func configReference(t *testing.T) (documented map[string]bool, defaults map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented, defaults = map[string]bool{}, map[string]string{}
	in := false
	tick := regexp.MustCompile("`([^`]*)`")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line[3:]) == "Configuration"
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		var names []string
		for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
			if settingShape.MatchString(m[1]) {
				names = append(names, m[1])
				documented[m[1]] = true
			}
		}
		if m := tick.FindStringSubmatch(cells[2]); m != nil && len(names) == 1 {
			defaults[names[0]] = m[1]
		}
	}
	if len(documented) == 0 {
		t.Fatal("README.md: found no configuration table under \"## Configuration\"")
	}
	return documented, defaults
}

// deployFacts is what the deploy tests compare files against.
type deployFacts struct {
	known, documented map[string]bool
	listenAddr        string        // LISTEN_ADDR's default, as config.go sets it
	port              string        // its port
	drain             time.Duration // how long `lipa serve` may take to stop with the default MPESA_TIMEOUT
}

func newDeployFacts(t *testing.T) deployFacts {
	t.Helper()
	cfg, err := loadConfig(func(string) (string, bool) { return "", false }, "")
	if err != nil {
		t.Fatal(err)
	}
	documented, defaults := configReference(t)
	if defaults["LISTEN_ADDR"] != cfg.ListenAddr {
		t.Errorf("README.md's configuration reference gives LISTEN_ADDR's default as %q, config.go as %q; they must agree", defaults["LISTEN_ADDR"], cfg.ListenAddr)
	}
	_, port, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		t.Fatal(err)
	}
	// cmdServe drains in-flight requests for twice the Daraja timeout plus 15 s.
	return deployFacts{known: knownSettings(t), documented: documented, listenAddr: cfg.ListenAddr, port: port, drain: 2*cfg.DarajaTimeout + 15*time.Second}
}

// checkSet fails for every name in env that Lipa does not read or README.md
// does not document; where tells which file set it.
func (f deployFacts) checkSet(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if len(env) == 0 {
		t.Errorf("%s: sets no variable for Lipa; the test no longer sees its settings", where)
	}
	for _, name := range sortedKeys(env) {
		switch {
		case !f.known[name]:
			t.Errorf("%s sets %s, which Lipa does not read (cmd/lipa/config.go); a misspelt setting is silently ignored", where, name)
		case !f.documented[name]:
			t.Errorf("%s sets %s, which README.md's configuration reference does not document", where, name)
		}
	}
}

// checkPort fails unless hostport's port is LISTEN_ADDR's default port.
func (f deployFacts) checkPort(t *testing.T, what, hostport string) {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		port = hostport // a bare port, as in EXPOSE or compose's expose
	}
	if port = strings.TrimSuffix(port, "/tcp"); port != f.port {
		t.Errorf("%s: port %q, want %s (LISTEN_ADDR's default %s)", what, port, f.port, f.listenAddr)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trusts reports whether the comma-separated LIPA_TRUSTED_PROXIES value list
// contains addr.
func trusts(t *testing.T, list, addr string) bool {
	t.Helper()
	prefixes, err := api.ParsePrefixes(list)
	if err != nil {
		t.Fatalf("LIPA_TRUSTED_PROXIES %q: %v", list, err)
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		t.Fatalf("%q is not an IP address", addr)
	}
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}

// systemdUnit is a unit file's settings: "Section.Key" to its values in
// order (a key may repeat).
type systemdUnit map[string][]string

func parseUnit(text string) systemdUnit {
	u := systemdUnit{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			if k, v, ok := strings.Cut(line, "="); ok {
				u[section+"."+strings.TrimSpace(k)] = append(u[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
			}
		}
	}
	return u
}

// environment returns the variables the unit's Environment= lines set
// (space-separated NAME=value words, double quotes allowed).
func (u systemdUnit) environment() map[string]string {
	env := map[string]string{}
	for _, line := range u["Service.Environment"] {
		var words []string
		var cur strings.Builder
		quoted := false
		for _, r := range line + " " {
			switch {
			case r == '"':
				quoted = !quoted
			case r == ' ' && !quoted:
				if cur.Len() > 0 {
					words = append(words, cur.String())
					cur.Reset()
				}
			default:
				cur.WriteRune(r)
			}
		}
		for _, w := range words {
			if k, v, ok := strings.Cut(w, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

func (u systemdUnit) last(key string) string {
	if v := u[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// caddyUpstream returns the upstream deploy/Caddyfile proxies to when its
// UPSTREAM placeholder is unset (on one machine), and the names of the
// {$VARIABLES} it reads.
func caddyUpstream(t *testing.T) (upstream string, vars []string) {
	t.Helper()
	text := readDeploy(t, "deploy/Caddyfile")
	for _, m := range regexp.MustCompile(`\{\$([A-Z0-9_]+)`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(vars, m[1]) {
			vars = append(vars, m[1])
		}
	}
	m := regexp.MustCompile(`(?m)^\s*reverse_proxy\s+\{\$UPSTREAM:([^}\s]+)\}`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("deploy/Caddyfile: no `reverse_proxy {$UPSTREAM:host:port}` line")
	}
	return m[1], vars
}

// nginxUpstreams returns the servers of deploy/nginx.conf's upstream block
// that are not commented out.
func nginxUpstreams(t *testing.T) []string {
	t.Helper()
	var servers []string
	in := false
	for _, line := range strings.Split(readDeploy(t, "deploy/nginx.conf"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "upstream "):
			in = true
		case in && line == "}":
			in = false
		case in && strings.HasPrefix(line, "server "):
			servers = append(servers, strings.TrimSuffix(strings.Fields(line)[1], ";"))
		}
	}
	return servers
}

// TestDeploySystemdUnit: deploy/lipa.service is hardened, sets only
// settings Lipa knows, and listens where the proxies send requests.
func TestDeploySystemdUnit(t *testing.T) {
	f := newDeployFacts(t)
	u := parseUnit(readDeploy(t, "deploy/lipa.service"))
	env := u.environment()
	f.checkSet(t, "deploy/lipa.service", env)

	for key, want := range map[string]string{
		"Service.ProtectSystem":    "strict",
		"Service.ProtectHome":      "yes",
		"Service.PrivateTmp":       "yes",
		"Service.NoNewPrivileges":  "yes",
		"Service.Restart":          "on-failure",
		"Service.StateDirectory":   "lipa",
		"Service.WorkingDirectory": "/var/lib/lipa",
	} {
		if got := u.last(key); got != want {
			t.Errorf("deploy/lipa.service %s=%q, want %q", strings.TrimPrefix(key, "Service."), got, want)
		}
	}
	if user := u.last("Service.User"); (user == "" || user == "root") && u.last("Service.DynamicUser") != "yes" {
		t.Errorf("deploy/lipa.service runs as %q, want a dedicated user or DynamicUser=yes", user)
	}
	if u.last("Service.EnvironmentFile") == "" {
		t.Error("deploy/lipa.service has no EnvironmentFile= for the secrets")
	}
	if exec := strings.Fields(u.last("Service.ExecStart")); len(exec) != 2 || !filepath.IsAbs(exec[0]) || exec[1] != "serve" {
		t.Errorf("deploy/lipa.service ExecStart=%q, want an absolute path to lipa and \"serve\"", u.last("Service.ExecStart"))
	}
	if want := "sqlite:/var/lib/" + u.last("Service.StateDirectory") + "/"; !strings.HasPrefix(env["DATABASE_URL"], want) {
		t.Errorf("deploy/lipa.service DATABASE_URL=%q, want the SQLite file in the StateDirectory (%s…)", env["DATABASE_URL"], want)
	}
	if d, err := time.ParseDuration(u.last("Service.TimeoutStopSec")); err != nil || d < f.drain {
		t.Errorf("deploy/lipa.service TimeoutStopSec=%q, want at least %s, the time `lipa serve` may take to drain", u.last("Service.TimeoutStopSec"), f.drain)
	}

	// The proxies on the same machine send requests to the unit's
	// LISTEN_ADDR, from loopback, which the unit trusts.
	if env["LISTEN_ADDR"] != f.listenAddr {
		t.Errorf("deploy/lipa.service LISTEN_ADDR=%q, want the default %q that deploy/Caddyfile and deploy/nginx.conf proxy to", env["LISTEN_ADDR"], f.listenAddr)
	}
	caddy, _ := caddyUpstream(t)
	nginx := nginxUpstreams(t)
	for what, upstream := range map[string]string{"deploy/Caddyfile reverse_proxy": caddy, "deploy/nginx.conf upstream server": strings.Join(nginx, " ")} {
		if upstream != env["LISTEN_ADDR"] {
			t.Errorf("%s %q, want the unit's LISTEN_ADDR %q", what, upstream, env["LISTEN_ADDR"])
			continue
		}
		f.checkPort(t, what, upstream)
		host, _, _ := net.SplitHostPort(upstream)
		if !trusts(t, env["LIPA_TRUSTED_PROXIES"], host) {
			t.Errorf("deploy/lipa.service LIPA_TRUSTED_PROXIES=%q does not include %s, the address a proxy on this machine connects from", env["LIPA_TRUSTED_PROXIES"], host)
		}
	}
	if !strings.Contains(readDeploy(t, "deploy/nginx.conf"), "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") {
		t.Error("deploy/nginx.conf does not append the client's address to X-Forwarded-For, which LIPA_TRUSTED_PROXIES relies on")
	}
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct{ cmd, args string }

func parseDockerfile(text string) []dockerInstr {
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDeployDockerfile: the image is a static build on a distroless base,
// runs as non-root, sets only settings Lipa knows, and exposes LISTEN_ADDR's
// port.
func TestDeployDockerfile(t *testing.T) {
	f := newDeployFacts(t)
	var final []dockerInstr // the last stage's instructions
	var all string
	for _, in := range parseDockerfile(readDeploy(t, "Dockerfile")) {
		if in.cmd == "FROM" {
			final = nil
		}
		final = append(final, in)
		all += in.cmd + " " + in.args + "\n"
	}
	env := map[string]string{}
	var user, volume, expose, entry string
	for _, in := range final {
		switch in.cmd {
		case "ENV":
			words := strings.Fields(in.args)
			if len(words) > 0 && !strings.Contains(words[0], "=") { // ENV NAME value
				env[words[0]] = strings.Join(words[1:], " ")
				break
			}
			for _, w := range words {
				k, v, _ := strings.Cut(w, "=")
				env[k] = strings.Trim(v, `"`)
			}
		case "USER":
			user = in.args
		case "VOLUME":
			volume = in.args
		case "EXPOSE":
			expose = in.args
		case "ENTRYPOINT", "CMD":
			entry += in.args + " "
		}
	}
	f.checkSet(t, "Dockerfile", env)
	if !strings.Contains(final[0].args, "distroless") && !strings.HasPrefix(final[0].args, "scratch") {
		t.Errorf("Dockerfile's final stage FROM %s, want a distroless or scratch base", final[0].args)
	}
	if !regexp.MustCompile(`RUN CGO_ENABLED=0 go build `).MatchString(all) {
		t.Error("Dockerfile does not build with CGO_ENABLED=0")
	}
	if !strings.Contains(all, "-X main.version=") {
		t.Error("Dockerfile does not set main.version at link time, which `lipa version` and /readyz report")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("Dockerfile USER %q, want a non-root user", user)
	}
	f.checkPort(t, "Dockerfile LISTEN_ADDR", env["LISTEN_ADDR"])
	f.checkPort(t, "Dockerfile EXPOSE", expose)
	if db := strings.TrimPrefix(env["DATABASE_URL"], "sqlite:"); filepath.Dir(db) != volume {
		t.Errorf("Dockerfile DATABASE_URL=%q is not in its VOLUME %q", env["DATABASE_URL"], volume)
	}
	if !strings.Contains(all, `"healthcheck"]`) {
		t.Error("Dockerfile has no HEALTHCHECK running `lipa healthcheck`")
	}
	if !strings.Contains(entry, `"serve"`) {
		t.Errorf("Dockerfile ENTRYPOINT/CMD %q do not run `lipa serve`", entry)
	}
}

// composeFile is the part of deploy/compose.yaml this test reads.
type composeFile struct {
	Services map[string]struct {
		EnvFile         any            `yaml:"env_file"`
		Environment     map[string]any `yaml:"environment"`
		Expose          []string       `yaml:"expose"`
		Ports           []string       `yaml:"ports"`
		Volumes         []string       `yaml:"volumes"`
		StopGracePeriod string         `yaml:"stop_grace_period"`
		Healthcheck     struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Networks any `yaml:"networks"` // a list of names, or names to settings
	} `yaml:"services"`
}

// envLine is one assignment of an env file; parseEnvFile reads them in
// order, commented-out ones ("# NAME=value") included and flagged.
type envLine struct {
	name, value string
	commented   bool
}

func parseEnvFile(text string) []envLine {
	var out []envLine
	re := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	for _, line := range strings.Split(text, "\n") {
		if m := re.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			out = append(out, envLine{name: m[2], value: m[3], commented: m[1] != ""})
		}
	}
	return out
}

// TestDeployCompose: the compose file's Lipa service sets only settings
// Lipa knows, listens on LISTEN_ADDR's port, trusts Caddy's address and
// only it, and every variable the file interpolates is in the example env
// file.
func TestDeployCompose(t *testing.T) {
	f := newDeployFacts(t)
	text := readDeploy(t, "deploy/compose.yaml")
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	lipaSvc, caddySvc := c.Services["lipa"], c.Services["caddy"]
	if _, ok := c.Services["postgres"]; !ok || lipaSvc.Environment == nil || caddySvc.Environment == nil {
		t.Fatalf("deploy/compose.yaml: want services lipa, postgres and caddy, each with an environment; got %v", sortedKeys(c.Services))
	}
	env := map[string]string{}
	for k, v := range lipaSvc.Environment {
		env[k], _ = v.(string)
	}
	f.checkSet(t, "deploy/compose.yaml (service lipa)", env)
	if !strings.HasPrefix(env["DATABASE_URL"], "postgres://") || !strings.Contains(env["DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("deploy/compose.yaml DATABASE_URL=%q, want the postgres service", env["DATABASE_URL"])
	}
	f.checkPort(t, "deploy/compose.yaml lipa LISTEN_ADDR", env["LISTEN_ADDR"])
	if len(lipaSvc.Expose) != 1 {
		t.Errorf("deploy/compose.yaml lipa expose %v, want LISTEN_ADDR's port", lipaSvc.Expose)
	}
	for _, p := range append(lipaSvc.Expose, lipaSvc.Ports...) {
		f.checkPort(t, "deploy/compose.yaml lipa expose/ports", p[strings.LastIndex(p, ":")+1:])
	}
	if !slices.Contains(lipaSvc.Healthcheck.Test, "healthcheck") {
		t.Errorf("deploy/compose.yaml lipa healthcheck %v, want `lipa healthcheck` (GET /readyz)", lipaSvc.Healthcheck.Test)
	}
	if d, err := time.ParseDuration(lipaSvc.StopGracePeriod); err != nil || d < f.drain {
		t.Errorf("deploy/compose.yaml lipa stop_grace_period %q, want at least %s, the time `lipa serve` may take to drain", lipaSvc.StopGracePeriod, f.drain)
	}

	// Caddy proxies to the lipa service on LISTEN_ADDR's port, from a fixed
	// address that Lipa trusts; the Caddyfile's variables are all set.
	upstream, _ := caddySvc.Environment["UPSTREAM"].(string)
	if host, _, _ := net.SplitHostPort(upstream); host != "lipa" {
		t.Errorf("deploy/compose.yaml caddy UPSTREAM %q, want the lipa service", upstream)
	}
	f.checkPort(t, "deploy/compose.yaml caddy UPSTREAM", upstream)
	_, vars := caddyUpstream(t)
	for _, v := range vars {
		if _, ok := caddySvc.Environment[v]; !ok {
			t.Errorf("deploy/Caddyfile reads {$%s}, which deploy/compose.yaml does not set for caddy", v)
		}
	}
	if !slices.Contains(caddySvc.Volumes, "./Caddyfile:/etc/caddy/Caddyfile:ro") {
		t.Errorf("deploy/compose.yaml caddy volumes %v, want ./Caddyfile mounted at /etc/caddy/Caddyfile", caddySvc.Volumes)
	}
	var caddyAddr string
	if nets, ok := caddySvc.Networks.(map[string]any); ok {
		for _, n := range nets {
			if n, ok := n.(map[string]any); ok {
				caddyAddr, _ = n["ipv4_address"].(string)
			}
		}
	}
	if caddyAddr == "" || !trusts(t, env["LIPA_TRUSTED_PROXIES"], caddyAddr) {
		t.Errorf("deploy/compose.yaml: LIPA_TRUSTED_PROXIES %q must include caddy's fixed address %q", env["LIPA_TRUSTED_PROXIES"], caddyAddr)
	}

	// Variables the compose file interpolates come from deploy/.env, whose
	// example sets each one that has no default.
	if c.Services["lipa"].EnvFile != ".env" {
		t.Errorf("deploy/compose.yaml lipa env_file %v, want .env (from deploy/.env.example)", lipaSvc.EnvFile)
	}
	example := map[string]bool{}
	for _, l := range parseEnvFile(readDeploy(t, "deploy/.env.example")) {
		example[l.name] = true
	}
	interpolated := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?-)?`).FindAllStringSubmatch(text, -1) {
		if m[2] == "" && !example[m[1]] && !interpolated[m[1]] {
			t.Errorf("deploy/compose.yaml needs ${%s}, which deploy/.env.example does not set", m[1])
		}
		interpolated[m[1]] = true
	}
	for name := range example {
		if !lipaPrefix.MatchString(name) && !interpolated[name] {
			t.Errorf("deploy/.env.example sets %s, which is neither Lipa's nor used by deploy/compose.yaml", name)
		}
	}
}

// TestDeployEnvExample: every Lipa setting in deploy/.env.example, active or
// commented out, is one Lipa knows; the file as shipped (simulator mode)
// and with its sandbox block uncommented both load and validate.
func TestDeployEnvExample(t *testing.T) {
	f := newDeployFacts(t)
	lines := parseEnvFile(readDeploy(t, "deploy/.env.example"))
	all := map[string]string{}
	active := map[string]string{}
	for _, l := range lines {
		if lipaPrefix.MatchString(l.name) {
			all[l.name] = l.value
		}
		if !l.commented {
			active[l.name] = l.value
		}
	}
	f.checkSet(t, "deploy/.env.example", all)

	uncommented := map[string]string{}
	for _, l := range lines { // in order: a later line wins, as in a file
		uncommented[l.name] = l.value
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"as shipped", active, envSimulator},
		{"with its commented settings", uncommented, envSandbox},
	} {
		cfg, err := loadConfig(lookupIn(c.env), "")
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("deploy/.env.example %s: %v", c.name, err)
		} else if cfg.Environment != c.want {
			t.Errorf("deploy/.env.example %s: environment %q, want %q", c.name, cfg.Environment, c.want)
		}
	}
}
