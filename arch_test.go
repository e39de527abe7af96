package lipa_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointInward enforces the layering of docs/ARCHITECTURE.md:
// adapters never import each other, the API and the operators' console
// reach storage only through the gateway, the root and webhook packages use
// only the standard library, and the public client uses no internal package.
func TestImportsPointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/lipa-gateway/lipa"
	forbidden := map[string][]string{
		mod:                         {mod + "/"},
		mod + "/webhook":            {mod},
		mod + "/client":             {"/internal/"},
		mod + "/internal/daraja":    {"/internal/sqlstore", "/internal/gateway", "/internal/api", "/internal/darajasim", "/internal/console", "/internal/metrics"},
		mod + "/internal/metrics":   {mod + "/"},
		mod + "/internal/darajasim": {"/internal/daraja", "/internal/sqlstore", "/internal/gateway", "/internal/api", "/internal/console"},
		mod + "/internal/sqlstore":  {"/internal/daraja", "/internal/darajasim", "/internal/gateway", "/internal/api", "/internal/console", "/internal/metrics"},
		mod + "/internal/gateway":   {"/internal/api", "/internal/darajasim", "/internal/console"},
		mod + "/internal/api":       {"/internal/sqlstore", "/internal/daraja", "/internal/darajasim", "/internal/console"},
		mod + "/internal/console":   {"/internal/sqlstore", "/internal/daraja", "/internal/darajasim", "/internal/api"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			for _, bad := range forbidden[p.ImportPath] {
				if !strings.HasPrefix(bad, mod) {
					bad = mod + bad
				}
				if imp == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) {
					t.Errorf("%s imports %s, which points outward", p.ImportPath, imp)
				}
			}
		}
	}
}
