package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// IntakeName is how the dashboard names the shared C2B intake pool (the
// payments no app has claimed) among the apps.
const IntakeName = "(intake)"

// maxLagSample bounds how many callbacks of one day the callback lag is
// measured on: the latest of that day.
const maxLagSample = 1000

// PaymentCount counts the payments of one Kenya day that share an app,
// type, status, failure reason and what settled them.
type PaymentCount struct {
	App           string // the app's name; IntakeName for unclaimed C2B payments
	Type          lipa.PaymentType
	Status        lipa.Status
	FailureReason lipa.FailureReason
	ResolvedBy    string
	Payments      int64
	Amount        lipa.Amount
}

// DayStats is what happened on one day in Kenya time (Daraja's and the
// operators' day, midnight to midnight EAT), by payment creation time.
type DayStats struct {
	Day    time.Time // midnight, Kenya time
	Counts []PaymentCount
	// Lags are how long after their payment the day's latest applied STK
	// callbacks arrived (at most 1,000), by app name.
	Lags map[string][]time.Duration
}

// KenyaDay returns midnight (Kenya time) of the day t falls on in Kenya.
func KenyaDay(t time.Time) time.Time {
	k := t.In(lipa.NairobiTime)
	return time.Date(k.Year(), k.Month(), k.Day(), 0, 0, 0, 0, lipa.NairobiTime)
}

// DayStats counts the payments created on the Kenya day of day, and
// samples that day's callback lag. It reads only that day's rows. A day
// whose payments can no longer change (it ended more than the pending
// expiry and an hour ago, and none of its payments is PENDING) is computed
// once and kept (tables payment_days, payment_day_counts,
// payment_day_lags), so later views, on any replica, read a few rows
// instead. Later changes to a kept day are not reflected: only a claim can
// still change one (an intake payment becomes an app's).
func (g *Gateway) DayStats(ctx context.Context, day time.Time) (*DayStats, error) {
	start := KenyaDay(day)
	end := start.AddDate(0, 0, 1)
	key := start.Format("2006-01-02")
	closed := !g.clock().Before(end.Add(g.cfg.PendingExpiry + time.Hour))
	out := &DayStats{Day: start, Lags: map[string][]time.Duration{}}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		names, err := appNames(ctx, tx)
		if err != nil {
			return err
		}
		var d *sqlstore.StoredDay
		found := false
		if closed {
			if d, found, err = tx.StoredDayStats(ctx, key); err != nil {
				return err
			}
		}
		if !found {
			d = &sqlstore.StoredDay{Lags: map[lipa.AppID][]time.Duration{}}
			if d.Counts, err = tx.PaymentStats(ctx, start.UTC(), end.UTC()); err != nil {
				return err
			}
			lags, err := tx.CallbackLags(ctx, start.UTC(), end.UTC(), maxLagSample)
			if err != nil {
				return err
			}
			for _, l := range lags {
				d.Lags[l.App] = append(d.Lags[l.App], l.Lag)
			}
			pending := false
			for _, r := range d.Counts {
				pending = pending || r.Status == lipa.StatusPending
			}
			if closed && !pending {
				if err := tx.StoreDayStats(ctx, key, d, g.clock()); err != nil {
					return err
				}
			}
		}
		for _, r := range d.Counts {
			out.Counts = append(out.Counts, PaymentCount{App: names[r.App], Type: r.Type, Status: r.Status,
				FailureReason: r.FailureReason, ResolvedBy: r.ResolvedBy, Payments: r.Payments, Amount: r.Amount})
		}
		for app, l := range d.Lags {
			out.Lags[names[app]] = append(out.Lags[names[app]], l...)
		}
		return nil
	})
	return out, err
}

// appNames maps app IDs to names, and "" to IntakeName.
func appNames(ctx context.Context, tx *sqlstore.Tx) (map[lipa.AppID]string, error) {
	apps, err := tx.Apps(ctx)
	if err != nil {
		return nil, err
	}
	names := map[lipa.AppID]string{"": IntakeName}
	for _, a := range apps {
		names[a.ID] = a.Name
	}
	return names, nil
}

// LiveStats is the state of things now, not of a day.
type LiveStats struct {
	Pending map[string]int64 // PENDING payments now, by app name (IntakeName never has any)
	// WebhookPending and WebhookFailed count deliveries still to send and
	// given up on, by app name.
	WebhookPending, WebhookFailed map[string]int64
	Daraja                        DarajaHealth
}

// DarajaHealth is what this process has seen of Daraja.
type DarajaHealth struct {
	Connected      bool      // false when this process has no Daraja client (a CLI command)
	TokenFetchedAt time.Time // the last OAuth token fetch; zero if none yet
	TokenExpiresAt time.Time
	LastOKAt       time.Time // the last call that succeeded
	LastErrorAt    time.Time // the last call that failed
	LastError      string    // e.g. "daraja stk push: 500.001.1001 Unable to lock subscriber (HTTP 500)"
	// ConfigError is set while Daraja refuses Lipa's configuration
	// (credentials, shortcode, passkey, callback URL) since its last
	// successful call, as /readyz reports it.
	ConfigError string
}

// LiveStats returns the PENDING payments now, the webhook backlog and
// Daraja's health as this process saw it. Each count is behind an index:
// PENDING and backlog rows are few, whatever the size of the tables.
func (g *Gateway) LiveStats(ctx context.Context) (*LiveStats, error) {
	out := &LiveStats{Pending: map[string]int64{}, WebhookPending: map[string]int64{}, WebhookFailed: map[string]int64{}}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		names, err := appNames(ctx, tx)
		if err != nil {
			return err
		}
		pending, err := tx.PendingCounts(ctx)
		if err != nil {
			return err
		}
		for app, n := range pending {
			out.Pending[names[app]] += n
		}
		backlog, err := tx.DeliveryBacklog(ctx)
		if err != nil {
			return err
		}
		for _, b := range backlog {
			if b.State == "failed" {
				out.WebhookFailed[names[b.App]] += b.Deliveries
			} else {
				out.WebhookPending[names[b.App]] += b.Deliveries
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Daraja = g.DarajaHealth()
	return out, nil
}

// DarajaHealth returns what this process has seen of Daraja.
func (g *Gateway) DarajaHealth() DarajaHealth {
	if g.daraja == nil {
		return DarajaHealth{}
	}
	h := g.daraja.Health()
	d := DarajaHealth{Connected: true, TokenFetchedAt: h.TokenFetchedAt, TokenExpiresAt: h.TokenExpiresAt,
		LastOKAt: h.LastOKAt, LastErrorAt: h.LastErrorAt, LastError: h.LastError}
	if msg := g.configErr.Load(); msg != nil {
		d.ConfigError = *msg
	}
	return d
}

// AppSummary is one app's figures over some days, as the dashboard shows
// them.
type AppSummary struct {
	App       string
	Payments  int64
	ByStatus  map[lipa.Status]int64
	ByType    map[lipa.PaymentType]int64
	Collected lipa.Amount // the sum of SUCCESS payments
	// SuccessRate is SUCCESS / (SUCCESS + FAILED) of the STK pushes, from 0
	// to 1; -1 when none was settled.
	SuccessRate float64
	// Failures counts FAILED payments by reason (cancelled_by_user,
	// insufficient_funds, wrong_pin, customer_unreachable, …).
	Failures map[lipa.FailureReason]int64
	// Reconciled counts the payments the reconciler settled because no
	// callback came: by STK push query or by expiry.
	Reconciled int64
	// LagP50 and LagP95 are percentiles of the sampled callback lags;
	// LagSamples how many there were (0: no figure).
	LagP50, LagP95 time.Duration
	LagSamples     int
}

// Summarize adds up days into one AppSummary per app, by app name, with
// a total of every app first (App "").
func Summarize(days []*DayStats) []AppSummary {
	by := map[string]*AppSummary{}
	lags := map[string][]time.Duration{}
	get := func(app string) *AppSummary {
		s, ok := by[app]
		if !ok {
			s = &AppSummary{App: app, ByStatus: map[lipa.Status]int64{}, ByType: map[lipa.PaymentType]int64{}, Failures: map[lipa.FailureReason]int64{}}
			by[app] = s
		}
		return s
	}
	for _, d := range days {
		for _, c := range d.Counts {
			for _, s := range []*AppSummary{get(""), get(c.App)} {
				s.Payments += c.Payments
				s.ByStatus[c.Status] += c.Payments
				s.ByType[c.Type] += c.Payments
				if c.Status == lipa.StatusSuccess {
					s.Collected += c.Amount
				}
				if c.Status == lipa.StatusFailed {
					s.Failures[c.FailureReason] += c.Payments
				}
				if c.ResolvedBy == lipa.ResolvedByQuery || c.ResolvedBy == lipa.ResolvedByExpiry {
					s.Reconciled += c.Payments
				}
			}
		}
		for app, l := range d.Lags {
			lags[app] = append(lags[app], l...)
			lags[""] = append(lags[""], l...)
		}
	}
	get("")
	out := make([]AppSummary, 0, len(by))
	for app, s := range by {
		var ok, failed int64
		for _, d := range days {
			for _, c := range d.Counts {
				if c.Type == lipa.TypeSTK && (app == "" || c.App == app) {
					switch c.Status {
					case lipa.StatusSuccess:
						ok += c.Payments
					case lipa.StatusFailed:
						failed += c.Payments
					}
				}
			}
		}
		s.SuccessRate = -1
		if ok+failed > 0 {
			s.SuccessRate = float64(ok) / float64(ok+failed)
		}
		if l := lags[app]; len(l) > 0 {
			slices.Sort(l)
			s.LagSamples, s.LagP50, s.LagP95 = len(l), percentile(l, 50), percentile(l, 95)
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b AppSummary) int {
		switch {
		case a.App == b.App:
			return 0
		case a.App == "":
			return -1
		case b.App == "":
			return 1
		case a.App < b.App:
			return -1
		}
		return 1
	})
	return out
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(i, 1)-1]
}
