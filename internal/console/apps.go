package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// appLine is an app with its figures of today and the last 14 days.
type appLine struct {
	gateway.AppInfo
	Today, Fortnight figures
}

type appsPage struct {
	Apps  []appLine
	Error string // a refused creation, shown beside the form
	Name  string // the name the refused creation asked for
}

// appLines returns every app with its figures (from the dashboard's days).
func (s *Server) appLines(r *http.Request) ([]appLine, error) {
	apps, err := s.gw.Apps(r.Context())
	if err != nil {
		return nil, err
	}
	days, err := s.days(r.Context())
	if err != nil {
		return nil, err
	}
	today, all := map[string]gateway.AppSummary{}, map[string]gateway.AppSummary{}
	for _, x := range gateway.Summarize(days[len(days)-1:]) {
		today[x.App] = x
	}
	for _, x := range gateway.Summarize(days) {
		all[x.App] = x
	}
	out := make([]appLine, len(apps))
	for i, a := range apps {
		out[i] = appLine{AppInfo: a, Today: figuresOf(today[a.Name]), Fortnight: figuresOf(all[a.Name])}
	}
	return out, nil
}

// apps serves GET /admin/apps.
func (s *Server) apps(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	lines, err := s.appLines(r)
	if err != nil {
		return err
	}
	s.render(w, r, op, http.StatusOK, "apps", "Apps", "apps", appsPage{Apps: lines})
	return nil
}

// secretPage shows a new secret (an API key, a webhook signing secret)
// once: on the answer to the POST that made it, never again.
type secretPage struct {
	App     string
	What    string // "API key", "webhook signing secret"
	Secret  string
	Heading string
	Notes   []string
}

// createApp serves POST /admin/apps with the form's name: the new key is
// shown on this answer only.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	app, key, err := s.gw.CreateApp(r.Context(), actor(op), name)
	if err != nil {
		if k := lipa.ErrorKind(err); k != lipa.Invalid && k != lipa.Conflict {
			return err
		}
		lines, lerr := s.appLines(r)
		if lerr != nil {
			return lerr
		}
		s.render(w, r, op, s.cfg.StatusOf(err), "apps", "Apps", "apps", appsPage{Apps: lines, Error: errorMessage(err), Name: name})
		return nil
	}
	s.log.Info("app created from the console", "app", app.Name, "operator", op.Operator.Username)
	s.render(w, r, op, http.StatusOK, "secret", "App "+app.Name+" created", "apps", secretPage{App: app.Name, What: "API key",
		Secret: key.Reveal(), Heading: "App " + app.Name + " created",
		Notes: []string{"The app sends this key in the X-API-KEY header.",
			"Copy it now: Lipa keeps only a hash of it and will never show it again. If it is lost, rotate the key."}})
	return nil
}

type appPage struct {
	appLine
	Notice  string
	Payment string // the payments page of the app
}

// notices are the messages an action's redirect may ask the app page to
// show (by code, so no text from the URL reaches the page).
var notices = map[string]string{
	"disabled":       "The app is disabled: its API keys are refused.",
	"enabled":        "The app is enabled: its API key works again.",
	"webhook-off":    "The webhook is removed; events stay in the app's feed.",
	"resumed":        "The webhook is resumed: pending deliveries go out again.",
	"not-paused":     "The webhook was not paused.",
	"redelivered":    "The deliveries are queued; they go out within a second.",
	"nothing-queued": "No delivery needed sending again.",
}

// app serves GET /admin/apps/{name}: the app, its figures and, for admins,
// its actions.
func (s *Server) app(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	lines, err := s.appLines(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	for _, l := range lines {
		if l.Name == name {
			s.render(w, r, op, http.StatusOK, "app", "App "+name, "apps", appPage{appLine: l, Notice: notices[r.URL.Query().Get("notice")],
				Payment: "/admin/payments?" + url.Values{"app": {name}}.Encode()})
			return nil
		}
	}
	return lipa.Errorf(lipa.NotFound, "app_not_found", "no app is named %q", name)
}

// appURL is an app's page, with a notice.
func appURL(name, notice string) string {
	u := "/admin/apps/" + url.PathEscape(name)
	if notice != "" {
		u += "?notice=" + notice
	}
	return u
}

// rotateKey serves POST /admin/apps/{name}/rotate-key: the new key is
// shown on this answer only; the old one works through the grace period.
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	name := r.PathValue("name")
	key, graceUntil, err := s.gw.RotateKey(r.Context(), actor(op), name)
	if err != nil {
		return err
	}
	s.log.Info("app key rotated from the console", "app", name, "operator", op.Operator.Username)
	note := "The old key stopped working at once."
	if graceUntil.After(s.now()) {
		note = "The old key keeps working until " + when(graceUntil) + " (Kenya time), so the app can switch without downtime."
	}
	s.render(w, r, op, http.StatusOK, "secret", "New key for "+name, "apps", secretPage{App: name, What: "API key", Secret: key.Reveal(),
		Heading: "New API key for " + name,
		Notes:   []string{note, "Copy it now: Lipa keeps only a hash of it and will never show it again."}})
	return nil
}

// setDisabled serves POST /admin/apps/{name}/disable and …/enable.
func (s *Server) setDisabled(disabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
		name := r.PathValue("name")
		if err := s.gw.SetAppDisabled(r.Context(), actor(op), name, disabled); err != nil {
			return err
		}
		notice := "enabled"
		if disabled {
			notice = "disabled"
		}
		s.log.Info("app "+notice+" from the console", "app", name, "operator", op.Operator.Username)
		http.Redirect(w, r, appURL(name, notice), http.StatusSeeOther)
		return nil
	}
}

// setWebhook serves POST /admin/apps/{name}/webhook with the form's url
// (empty removes the webhook): a new signing secret is shown on this
// answer only.
func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	name, u := r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("url"))
	if r.PostForm.Get("remove") != "" {
		u = ""
	}
	secret, err := s.gw.SetWebhook(r.Context(), actor(op), name, u)
	if err != nil {
		return err
	}
	s.log.Info("webhook set from the console", "app", name, "url", u, "operator", op.Operator.Username)
	if u == "" {
		http.Redirect(w, r, appURL(name, "webhook-off"), http.StatusSeeOther)
		return nil
	}
	s.render(w, r, op, http.StatusOK, "secret", "Webhook of "+name, "apps", secretPage{App: name, What: "webhook signing secret",
		Secret: secret.Reveal(), Heading: "Webhook of " + name + " set to " + u,
		Notes: []string{"The app checks each delivery's Lipa-Signature header with this secret (see the README).",
			"Copy it now: it is not shown again. Setting the webhook again makes a new secret."}})
	return nil
}

type testEventPage struct {
	App    string
	Result *gateway.TestDelivery
	OK     bool
}

// testEvent serves POST /admin/apps/{name}/test-event: a signed
// webhook.test event is sent to the app's webhook now, and how it answered
// is shown.
func (s *Server) testEvent(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	name := r.PathValue("name")
	res, err := s.gw.SendTestEvent(r.Context(), actor(op), name)
	if err != nil {
		return err
	}
	s.render(w, r, op, http.StatusOK, "test_event", "Test event for "+name, "apps", testEventPage{App: name, Result: res,
		OK: res.Error == ""})
	return nil
}
