package api

import (
	"net/http"
	"sort"

	"github.com/lipa-gateway/lipa"
)

// singleHeader refuses a request that sends the header name more than once
// (as separate header lines): which copy counts would be a guess, and a
// guess is dangerous here (two Idempotency-Key headers where the first wins
// let a retry naming the second key send a second prompt). Invalid
// "duplicate_header" naming the header.
func singleHeader(r *http.Request, name string) error {
	if n := len(r.Header.Values(name)); n > 1 {
		return lipa.InvalidField("duplicate_header", name, "the %s header appears %d times; send it once", name, n)
	}
	return nil
}

// singleParameters refuses a request whose query string names a parameter
// more than once (?reference=A&reference=B): Lipa would read only the
// first. Invalid "duplicate_parameter" naming the parameter (the first in
// alphabetical order when there are several).
func singleParameters(r *http.Request) error {
	q := r.URL.Query()
	var dup []string
	for k, vs := range q {
		if len(vs) > 1 {
			dup = append(dup, k)
		}
	}
	if len(dup) == 0 {
		return nil
	}
	sort.Strings(dup)
	k := truncate(dup[0], 40)
	return lipa.InvalidField("duplicate_parameter", k, "query parameter %q appears %d times; send it once", k, len(q[dup[0]]))
}
