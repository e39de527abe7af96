package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

type webhooksPage struct {
	App, State string
	Apps       []gateway.AppInfo
	Paused     []gateway.AppInfo // apps whose webhook is paused
	Deliveries []gateway.WebhookDelivery
	NextURL    string
	FirstURL   string
	Notice     string
	Error      string
}

// webhooks serves GET /admin/webhooks?app=&state=: deliveries newest
// first, each with every attempt; paused endpoints on top.
func (s *Server) webhooks(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	v := r.URL.Query()
	p := webhooksPage{App: v.Get("app"), State: v.Get("state"), Notice: notices[v.Get("notice")]}
	apps, err := s.gw.Apps(r.Context())
	if err != nil {
		return err
	}
	p.Apps = apps
	for _, a := range apps {
		if !a.PausedAt.IsZero() {
			p.Paused = append(p.Paused, a)
		}
	}
	status := http.StatusOK
	list, next, err := s.gw.WebhookDeliveryList(r.Context(), gateway.DeliveryQuery{App: p.App, State: p.State, Cursor: v.Get("cursor")})
	switch {
	case lipa.ErrorKind(err) == lipa.Invalid:
		status, p.Error = http.StatusBadRequest, errorMessage(err)
	case err != nil:
		return err
	}
	p.Deliveries = list
	base := url.Values{}
	for k, x := range map[string]string{"app": p.App, "state": p.State} {
		if x != "" {
			base.Set(k, x)
		}
	}
	if next != "" {
		n := url.Values{"cursor": {next}}
		for k := range base {
			n.Set(k, base.Get(k))
		}
		p.NextURL = "/admin/webhooks?" + n.Encode()
	}
	if v.Get("cursor") != "" {
		p.FirstURL = "/admin/webhooks?" + base.Encode()
	}
	s.render(w, r, op, status, "webhooks", "Webhooks", "webhooks", p)
	return nil
}

// webhooksURL is the webhooks page of one app, with a notice.
func webhooksURL(app, notice string) string {
	v := url.Values{"app": {app}}
	if notice != "" {
		v.Set("notice", notice)
	}
	return "/admin/webhooks?" + v.Encode()
}

// redeliver serves POST /admin/webhooks/redeliver with app and event_id
// (one event again) or failed=1 (every failed delivery of the app, which
// also resumes a paused endpoint).
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	app, event := strings.TrimSpace(r.PostForm.Get("app")), strings.TrimSpace(r.PostForm.Get("event_id"))
	if app == "" || (event == "") == (r.PostForm.Get("failed") == "") {
		return lipa.Errorf(lipa.Invalid, "invalid_form", "name the app and either one event or every failed delivery")
	}
	n, err := s.gw.Redeliver(r.Context(), actor(op), app, event)
	if err != nil {
		return err
	}
	s.log.Info("webhook redelivery from the console", "app", app, "event_id", event, "deliveries", n, "operator", op.Operator.Username)
	notice := "redelivered"
	if n == 0 {
		notice = "nothing-queued"
	}
	http.Redirect(w, r, webhooksURL(app, notice), http.StatusSeeOther)
	return nil
}

// resume serves POST /admin/webhooks/resume with app: a paused endpoint
// gets its pending deliveries again.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	app := strings.TrimSpace(r.PostForm.Get("app"))
	was, err := s.gw.ResumeWebhook(r.Context(), actor(op), app)
	if err != nil {
		return err
	}
	notice := "resumed"
	if !was {
		notice = "not-paused"
	}
	http.Redirect(w, r, webhooksURL(app, notice), http.StatusSeeOther)
	return nil
}

// settings serves GET /admin/settings: the effective configuration with
// secrets masked, the URLs to give Safaricom, the environment and the
// version.
func (s *Server) settings(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	s.render(w, r, op, http.StatusOK, "settings", "Settings", "settings", s.cfg.Settings)
	return nil
}
