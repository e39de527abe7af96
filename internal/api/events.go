package api

import (
	"encoding/json"
	"net/http"

	"github.com/lipa-gateway/lipa"
)

// events serves GET /api/events/?after=<event id>&limit=: the app's events
// in order, for apps that cannot receive webhooks and to catch up after an
// outage. Answer: {"events": [...], "has_more": bool, "last_id": id|null};
// pass last_id back as after.
func (s *Server) events(w http.ResponseWriter, r *http.Request, app *lipa.App) error {
	q := r.URL.Query()
	evs, more, err := s.gw.Events(r.Context(), app, q.Get("after"), q.Get("limit"))
	if err != nil {
		return err
	}
	var last *string
	if n := len(evs); n > 0 {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(evs[n-1], &head); err == nil {
			last = &head.ID
		}
	}
	if evs == nil {
		evs = []json.RawMessage{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": evs, "has_more": more, "last_id": last})
}
