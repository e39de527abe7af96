package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// adminActor is who the audit log names for actions through the admin API.
var adminActor = gateway.Actor{Kind: gateway.ActorAPI, Name: "admin-api"}

// listReview serves GET /api/admin/review/?state=&reason=&payment_id=&limit=&cursor=:
// review items, newest first; open ones unless state says otherwise
// (open, resolved, all).
func (s *Server) listReview(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := gateway.ReviewFilter{State: gateway.ReviewOpen, Reason: gateway.ReviewReason(q.Get("reason")), PaymentID: lipa.PaymentID(q.Get("payment_id"))}
	switch st := q.Get("state"); st {
	case "", "open":
	case "all":
		f.State = ""
	case "resolved":
		f.State = gateway.ReviewResolved
	default:
		return lipa.InvalidField("invalid_state", "state", "state must be open, resolved or all")
	}
	var err error
	if f.Limit, err = queryInt(q.Get("limit"), "limit", "invalid_limit", 1000); err != nil {
		return err
	}
	before, err := queryInt(q.Get("cursor"), "cursor", "invalid_cursor", 1<<62)
	if err != nil {
		return err
	}
	f.Before = int64(before)
	items, err := s.gw.ReviewItems(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]gateway.ReviewItemView, 0, len(items))
	for _, it := range items {
		out = append(out, it.View())
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	var next *string
	if len(items) == limit {
		c := strconv.FormatInt(items[len(items)-1].ID, 10)
		next = &c
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": out, "next_cursor": next})
}

// queryInt reads an optional positive whole-number query parameter (0 when
// absent).
func queryInt(v, field, code string, max int) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, lipa.InvalidField(code, field, "%s must be a whole number from 1 to %d", field, max)
	}
	return n, nil
}

// reviewID reads the {id} of a review path.
func reviewID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, lipa.Errorf(lipa.NotFound, "review_item_not_found", "no review item %q", truncate(r.PathValue("id"), 40))
	}
	return id, nil
}

// payloadBody is a stored payload's body for JSON: itself when it is
// JSON, else a string of its bytes.
func payloadBody(b []byte) json.RawMessage {
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

// showReview serves GET /api/admin/review/{id}/: the item, the stored
// payload, the payment and the item's history.
func (s *Server) showReview(w http.ResponseWriter, r *http.Request) error {
	id, err := reviewID(r)
	if err != nil {
		return err
	}
	d, err := s.gw.ReviewItem(r.Context(), id)
	if err != nil {
		return err
	}
	out := map[string]any{"item": d.Item.View(), "payload": nil, "payment": nil}
	if d.Payload != nil {
		out["payload"] = map[string]any{"id": d.Payload.ID, "kind": d.Payload.Kind, "path": d.Payload.Path, "source": d.Payload.SourceAddr,
			"received_at": d.Payload.ReceivedAt.Format(time.RFC3339Nano), "outcome": d.Payload.Outcome, "note": d.Payload.Note,
			"body": payloadBody(d.Payload.Body)}
	}
	if d.Payment != nil {
		out["payment"] = lipa.ViewOf(d.Payment)
	}
	hist := []gateway.AuditEntryView{}
	for _, e := range d.History {
		hist = append(hist, e.View())
	}
	out["history"] = hist
	return writeJSON(w, http.StatusOK, out)
}

// writeResolution answers a resolution with the item and its payment.
func writeResolution(w http.ResponseWriter, res *gateway.ReviewResult) error {
	out := map[string]any{"item": res.Item.View(), "payment": nil}
	if res.Payment != nil {
		out["payment"] = lipa.ViewOf(res.Payment)
	}
	return writeJSON(w, http.StatusOK, out)
}

// resolveReview serves POST /api/admin/review/{id}/{action}/ for the
// actions match {"payment_id", "reason"}, settle {"status", "receipt",
// "reason"}, create-payment {"amount", "account", "phone", "reason"} and
// dismiss {"reason"}.
func (s *Server) resolveReview(action string) handlerFunc {
	fields := map[string][]string{
		"match":          {"payment_id", "reason"},
		"settle":         {"status", "receipt", "reason"},
		"create-payment": {"amount", "account", "phone", "reason"},
		"dismiss":        {"reason"},
	}[action]
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := reviewID(r)
		if err != nil {
			return err
		}
		f, err := readFields(w, r, fields...)
		if err != nil {
			return err
		}
		var res *gateway.ReviewResult
		ctx := r.Context()
		switch action {
		case "match":
			if f["payment_id"] == "" {
				return lipa.InvalidField("missing_parameter", "payment_id", "match needs the payment_id to apply the callback to")
			}
			res, err = s.gw.ResolveMatch(ctx, adminActor, id, lipa.PaymentID(f["payment_id"]), f["reason"])
		case "settle":
			res, err = s.gw.ResolveSettle(ctx, adminActor, id, gateway.Settlement{Status: lipa.Status(strings.ToUpper(f["status"])), Receipt: f["receipt"]}, f["reason"])
		case "create-payment":
			res, err = s.gw.ResolveCreatePayment(ctx, adminActor, id, gateway.Correction{Amount: f["amount"], Account: f["account"], Phone: f["phone"]}, f["reason"])
		default:
			res, err = s.gw.ResolveDismiss(ctx, adminActor, id, f["reason"])
		}
		if err != nil {
			return err
		}
		return writeResolution(w, res)
	}
}

// listAudit serves GET /api/admin/audit/?actor=&action=&target=&since=&until=&limit=&cursor=:
// operator actions, newest first; since and until are RFC 3339 times.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := gateway.AuditFilter{Actor: q.Get("actor"), Action: gateway.AuditAction(q.Get("action")), Target: q.Get("target")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return lipa.InvalidField("invalid_"+p.name, p.name, "%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z", p.name)
			}
			*p.dst = t
		}
	}
	var err error
	if f.Limit, err = queryInt(q.Get("limit"), "limit", "invalid_limit", 1000); err != nil {
		return err
	}
	before, err := queryInt(q.Get("cursor"), "cursor", "invalid_cursor", 1<<62)
	if err != nil {
		return err
	}
	f.Before = int64(before)
	entries, err := s.gw.AuditLog(r.Context(), f)
	if err != nil {
		return err
	}
	out := []gateway.AuditEntryView{}
	for _, e := range entries {
		out = append(out, e.View())
	}
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	var next *string
	if len(entries) == limit {
		c := strconv.FormatInt(entries[len(entries)-1].ID, 10)
		next = &c
	}
	return writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next_cursor": next})
}
