package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// auditPageSize is how many audit entries the audit page shows per page.
const auditPageSize = 50

// auditActions are the filter's suggestions; any action may be typed.
var auditActions = []gateway.AuditAction{gateway.AuditAppCreate, gateway.AuditAppRotateKey, gateway.AuditAppDisable,
	gateway.AuditAppEnable, gateway.AuditAppSetWebhook, gateway.AuditWebhookRedeliver, gateway.AuditWebhookResume,
	gateway.AuditWebhookTest, gateway.AuditCallbackMatch, gateway.AuditReviewMatch, gateway.AuditReviewSettle,
	gateway.AuditReviewCreatePayment, gateway.AuditReviewDismiss, gateway.AuditOperatorCreate, gateway.AuditOperatorDisable,
	gateway.AuditOperatorEnable, gateway.AuditOperatorPassword, gateway.AuditPaymentsExport}

// auditLine is an audit entry as the page shows it.
type auditLine struct {
	gateway.AuditEntry
	Link    string   // the target's console page; "" when it has none
	Changes []string // "field: before → after" for each value that changed (or was set)
	Doc     string   // before and after, pretty-printed
}

type auditPage struct {
	Actor, Kind, Action, Target, From, To string
	Actions                               []gateway.AuditAction
	Entries                               []auditLine
	NextURL, FirstURL                     string
	Filtered                              bool
	Error                                 string
}

// audit serves GET /admin/audit?actor=&kind=&action=&target=&from=&to=&cursor=:
// every operator action (console, CLI, admin API) from the audit log,
// newest first, a page at a time. The page has no form that changes
// anything, and the console has no route that could: the log is only ever
// appended to, by the actions themselves.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	v := r.URL.Query()
	p := auditPage{Actor: strings.TrimSpace(v.Get("actor")), Kind: v.Get("kind"), Action: strings.TrimSpace(v.Get("action")),
		Target: strings.TrimSpace(v.Get("target")), From: v.Get("from"), To: v.Get("to"), Actions: auditActions}
	f := gateway.AuditFilter{Actor: p.Actor, Action: gateway.AuditAction(p.Action), Target: p.Target, Limit: auditPageSize + 1}
	status := http.StatusOK
	switch k := gateway.ActorKind(p.Kind); k {
	case "", gateway.ActorConsole, gateway.ActorCLI, gateway.ActorAPI:
		f.ActorKind = k
	default:
		status, p.Error = http.StatusBadRequest, "Choose the console, the command line or the admin API."
	}
	var err error
	if f.Since, f.Until, err = gateway.AuditDays(p.From, p.To); err != nil && p.Error == "" {
		if lipa.ErrorKind(err) != lipa.Invalid {
			return err
		}
		status, p.Error = s.cfg.StatusOf(err), errorMessage(err)
	}
	if c := v.Get("cursor"); c != "" && p.Error == "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			status, p.Error = http.StatusBadRequest, "That page of the audit log does not exist; start from the newest."
		}
		f.Before = n
	}
	base := url.Values{}
	for k, x := range map[string]string{"actor": p.Actor, "kind": p.Kind, "action": p.Action, "target": p.Target, "from": p.From, "to": p.To} {
		if x != "" {
			base.Set(k, x)
		}
	}
	p.Filtered = len(base) > 0
	if p.Error == "" {
		entries, err := s.gw.AuditLog(r.Context(), f)
		if err != nil {
			return err
		}
		if len(entries) > auditPageSize {
			entries = entries[:auditPageSize]
			n := url.Values{"cursor": {strconv.FormatInt(entries[auditPageSize-1].ID, 10)}}
			for k := range base {
				n.Set(k, base.Get(k))
			}
			p.NextURL = "/admin/audit?" + n.Encode()
		}
		for _, e := range entries {
			p.Entries = append(p.Entries, auditLineOf(e))
		}
		if f.Before != 0 {
			p.FirstURL = "/admin/audit"
			if len(base) > 0 {
				p.FirstURL += "?" + base.Encode()
			}
		}
	}
	s.render(w, r, op, status, "audit", "Audit log", "audit", p)
	return nil
}

// auditLineOf prepares an entry for the page.
func auditLineOf(e gateway.AuditEntry) auditLine {
	l := auditLine{AuditEntry: e, Link: targetLink(e.Target), Changes: changes(e.Before, e.After)}
	if e.Before != nil || e.After != nil {
		var b bytes.Buffer
		doc := fmt.Appendf(nil, `{"before":%s,"after":%s}`, orNull(e.Before), orNull(e.After))
		if json.Indent(&b, doc, "", "  ") == nil {
			l.Doc = b.String()
		}
	}
	return l
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// targetLink is the console page of an audit target: an app, a review
// item, a payment; "" for targets without one.
func targetLink(target string) string {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || id == "" {
		return ""
	}
	switch kind {
	case "app":
		return "/admin/apps/" + url.PathEscape(id)
	case "review":
		return "/admin/review/" + url.PathEscape(id)
	case "payment":
		return "/admin/payments/" + url.PathEscape(id)
	}
	return ""
}

// maxChanges bounds the changes listed per entry; the whole documents are
// shown beside them.
const maxChanges = 12

// changes lists what an action changed: each leaf value of the before and
// after documents (flattened to dotted paths) that differs, as "path:
// before → after", or "path: value" for a value set where there was no
// document before. Documents that are not JSON objects give no list.
func changes(before, after []byte) []string {
	var b, a map[string]any
	if len(after) == 0 || json.Unmarshal(after, &a) != nil {
		return nil
	}
	if len(before) > 0 && json.Unmarshal(before, &b) != nil {
		return nil
	}
	fb, fa := map[string]string{}, map[string]string{}
	flatten("", b, fb)
	flatten("", a, fa)
	var keys []string
	for k, x := range fa {
		y, ok := fb[k]
		if !ok && (x == `""` || x == "null") {
			continue // nothing to tell of a new field left empty
		}
		if b == nil || !ok || y != x {
			keys = append(keys, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if len(out) == maxChanges {
			out = append(out, fmt.Sprintf("… and %d more (see the documents)", len(keys)-maxChanges))
			break
		}
		x, inAfter := fa[k]
		switch {
		case b == nil:
			out = append(out, k+": "+x)
		case !inAfter:
			out = append(out, k+": "+fb[k]+" → (none)")
		default:
			y, ok := fb[k]
			if !ok {
				y = "(none)"
			}
			out = append(out, k+": "+y+" → "+x)
		}
	}
	return out
}

// flatten writes the leaves of v under prefix into out, as JSON text.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, y, out)
		}
	case nil:
		if prefix != "" {
			out[prefix] = "null"
		}
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}
