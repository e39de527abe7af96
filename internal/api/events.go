package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/lipa-gateway/lipa"
)

// events serves GET /api/events/?after=<event id>&limit=: the app's events
// in order, for apps that cannot receive webhooks and to catch up after an
// outage. Answer: {"events": [...], "has_more": bool, "last_id": id}.
// last_id is always the position to pass back as after: the last event
// answered, or, when there is nothing new, the after given ("" before the
// app's first event, when none was given: after= reads from the start).
func (s *Server) events(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	q := r.URL.Query()
	after := q.Get("after")
	evs, more, err := s.gw.Events(r.Context(), app, after, q.Get("limit"))
	if err != nil {
		return err
	}
	last := after
	if n := len(evs); n > 0 {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(evs[n-1], &head); err != nil || head.ID == "" {
			return fmt.Errorf("read the id of event %d of the page: %w", n, err)
		}
		last = head.ID
	}
	if evs == nil {
		evs = []json.RawMessage{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": evs, "has_more": more, "last_id": last})
}
