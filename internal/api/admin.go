package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/lipa-gateway/lipa"
)

// admin guards an operators' endpoint: 404 when no admin key is configured,
// 401 unless X-ADMIN-KEY matches it (compared in constant time). Wrong or
// missing keys count as failed authentications of their source address,
// like wrong API keys (429 "too_many_failed_auth" past the limit). Two
// X-ADMIN-KEY headers or a query parameter given twice are 400.
func (s *Server) admin(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.adminKey == [32]byte{} {
			return lipa.Errorf(lipa.NotFound, "not_found", "the operators' API is disabled; set LIPA_ADMIN_KEY to enable it")
		}
		if err := singleHeader(r, "X-ADMIN-KEY"); err != nil {
			return err
		}
		got := sha256.Sum256([]byte(r.Header.Get("X-ADMIN-KEY")))
		if subtle.ConstantTimeCompare(got[:], s.adminKey[:]) != 1 {
			return s.authFailure(w, r, "X-ADMIN-KEY", lipa.Errorf(lipa.Unauthorized, "invalid_admin_key", "send the operators' key (LIPA_ADMIN_KEY) in the X-ADMIN-KEY header"))
		}
		if err := singleParameters(r); err != nil {
			return err
		}
		return h(w, r)
	}
}

// unmatchedCallbacks serves GET /api/admin/callbacks/unmatched/?limit=: the
// stored STK callbacks that found no payment, newest first.
func (s *Server) unmatchedCallbacks(w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return lipa.InvalidField("invalid_limit", "limit", "limit must be a whole number from 1 to 1000")
		}
		limit = n
	}
	msgs, err := s.gw.UnmatchedCallbacks(r.Context(), limit)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, m := range msgs {
		body := json.RawMessage(m.Body)
		if !json.Valid(m.Body) {
			body, _ = json.Marshal(string(m.Body))
		}
		out = append(out, map[string]any{"id": m.ID, "checkout_request_id": m.CheckoutRequestID, "received_at": m.ReceivedAt.Format(time.RFC3339),
			"source": m.SourceAddr, "path": m.Path, "note": m.Note, "body": body})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"callbacks": out})
}

// matchCallback serves POST /api/admin/callbacks/{id}/match/ with body
// {"payment_id", "reason"?}: applies a stored unmatched callback to a
// PENDING payment whose push answer was lost (the review queue's match,
// addressed by the stored callback's ID).
func (s *Server) matchCallback(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return lipa.Errorf(lipa.NotFound, "inbound_not_found", "no stored message %q", r.PathValue("id"))
	}
	f, err := readFields(w, r, "payment_id", "reason")
	if err != nil {
		return err
	}
	p, err := s.gw.MatchCallback(r.Context(), adminActor, id, lipa.PaymentID(f["payment_id"]), f["reason"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, lipa.ViewOf(p))
}
