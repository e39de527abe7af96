package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// dashboardDays is how many days the dashboard covers, today included.
const dashboardDays = gateway.DashboardDays

// cachedDay is a past day's figures and when they were read. Past days
// still change a little (a PENDING payment settles, an intake payment is
// claimed), so they are read again after statsTTL; today is always read.
type cachedDay struct {
	stats *gateway.DayStats
	at    time.Time
}

// days returns the figures of the last dashboardDays Kenya days, oldest
// first, today last. Today is read every time; earlier days are kept for
// statsTTL, so a dashboard view reads one day's payments, not fourteen.
func (s *Server) days(ctx context.Context) ([]*gateway.DayStats, error) {
	now := s.now()
	today := gateway.KenyaDay(now)
	out := make([]*gateway.DayStats, dashboardDays)
	for i := range dashboardDays {
		day := today.AddDate(0, 0, i-(dashboardDays-1))
		if i < dashboardDays-1 {
			s.statsMu.Lock()
			c, ok := s.stats[day]
			s.statsMu.Unlock()
			if ok && now.Sub(c.at) < s.statsTTL {
				out[i] = c.stats
				continue
			}
		}
		st, err := s.gw.DayStats(ctx, day)
		if err != nil {
			return nil, err
		}
		out[i] = st
		if i < dashboardDays-1 {
			s.statsMu.Lock()
			s.stats[day] = cachedDay{stats: st, at: now}
			for d := range s.stats {
				if d.Before(today.AddDate(0, 0, -dashboardDays)) {
					delete(s.stats, d)
				}
			}
			s.statsMu.Unlock()
		}
	}
	return out, nil
}

// dashboardReasons are the failure reasons the dashboard gives a column
// each (the ResultCode mix); the others are added up as "other".
var dashboardReasons = []lipa.FailureReason{lipa.ReasonCancelledByUser, lipa.ReasonInsufficientFunds, lipa.ReasonWrongPIN,
	lipa.ReasonCustomerUnreachable}

// figures are an app's numbers over some days, ready to show.
type figures struct {
	Payments, Success, Failed, Pending, STK, C2B int64
	Collected                                    lipa.Amount
	SuccessRate                                  float64 // -1: nothing settled
	Failures                                     []int64 // by dashboardReasons, then every other reason
	Reconciled                                   int64
	LagP50, LagP95                               time.Duration
	LagSamples                                   int
}

func figuresOf(s gateway.AppSummary) figures {
	f := figures{Payments: s.Payments, Success: s.ByStatus[lipa.StatusSuccess], Failed: s.ByStatus[lipa.StatusFailed],
		Pending: s.ByStatus[lipa.StatusPending], STK: s.ByType[lipa.TypeSTK], C2B: s.ByType[lipa.TypeC2B], Collected: s.Collected,
		SuccessRate: s.SuccessRate, Reconciled: s.Reconciled, LagP50: s.LagP50, LagP95: s.LagP95, LagSamples: s.LagSamples}
	if s.ByStatus == nil {
		f.SuccessRate = -1
	}
	var other int64
	for reason, n := range s.Failures {
		if !slices.Contains(dashboardReasons, reason) {
			other += n
		}
	}
	for _, reason := range dashboardReasons {
		f.Failures = append(f.Failures, s.Failures[reason])
	}
	f.Failures = append(f.Failures, other)
	return f
}

// dashboardRow is one app's line: today and the last 14 days side by side.
type dashboardRow struct {
	App              string
	Today, Fortnight figures
	Pending          int64
	WebhookPending   int64
	WebhookFailed    int64
}

type dashboardPage struct {
	Today   time.Time
	Rows    []dashboardRow
	Total   dashboardRow
	Reasons []lipa.FailureReason // the failure reasons shown as columns
	Chart   chart
	Daily   []dayLine
	Daraja  gateway.DarajaHealth
	Now     time.Time
}

// dayLine is one day of the chart, also shown as a table.
type dayLine struct {
	Day                      time.Time
	Success, Failed, Pending int64
	Collected                lipa.Amount
}

// dashboard serves GET /admin/.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	days, err := s.days(r.Context())
	if err != nil {
		return err
	}
	live, err := s.gw.LiveStats(r.Context())
	if err != nil {
		return err
	}
	byApp := map[string]*dashboardRow{}
	var order []string
	row := func(app string) *dashboardRow {
		if d, ok := byApp[app]; ok {
			return d
		}
		d := &dashboardRow{App: app, Today: figuresOf(gateway.AppSummary{}), Fortnight: figuresOf(gateway.AppSummary{})}
		byApp[app] = d
		order = append(order, app)
		return d
	}
	for _, x := range gateway.Summarize(days) {
		row(x.App).Fortnight = figuresOf(x)
	}
	for _, x := range gateway.Summarize(days[len(days)-1:]) {
		row(x.App).Today = figuresOf(x)
	}
	for app, n := range live.Pending {
		row(app).Pending += n
		row("").Pending += n
	}
	for app, n := range live.WebhookPending {
		row(app).WebhookPending += n
		row("").WebhookPending += n
	}
	for app, n := range live.WebhookFailed {
		row(app).WebhookFailed += n
		row("").WebhookFailed += n
	}
	p := dashboardPage{Today: days[len(days)-1].Day, Daraja: live.Daraja, Now: s.now(), Reasons: dashboardReasons}
	for _, app := range order {
		if app == "" {
			p.Total = *byApp[app]
			p.Total.App = "All apps"
			continue
		}
		p.Rows = append(p.Rows, *byApp[app])
	}
	slices.SortFunc(p.Rows, func(a, b dashboardRow) int { return strings.Compare(a.App, b.App) })
	for _, d := range days {
		line := dayLine{Day: d.Day}
		for _, c := range d.Counts {
			switch c.Status {
			case lipa.StatusSuccess:
				line.Success += c.Payments
				line.Collected += c.Amount
			case lipa.StatusFailed:
				line.Failed += c.Payments
			default:
				line.Pending += c.Payments
			}
		}
		p.Daily = append(p.Daily, line)
	}
	p.Chart = drawChart(p.Daily)
	s.render(w, r, op, http.StatusOK, "dashboard", "Dashboard", "dashboard", p)
	return nil
}

// chart is a stacked bar chart of payments per day, drawn on the server
// as inline SVG (no script; colours from the stylesheet).
type chart struct {
	Width, Height int
	Bars          []bar
	Ticks         []tick
	Summary       string // what the chart shows, for screen readers
}

type bar struct {
	X, Width      int
	Segments      []segment
	Label         string // the day, under the bar
	LabelX        int
	Title         string // the bar's figures, as a tooltip and for screen readers
	ShowLabel     bool
	LabelY, BaseY int
}

type segment struct {
	Y, Height int
	Class     string // bar-success, bar-failed, bar-pending
}

type tick struct {
	Y     int
	Label string
}

func drawChart(days []dayLine) chart {
	const (
		width, height = 700, 260
		left, right   = 48, 8
		top, bottom   = 10, 40
	)
	c := chart{Width: width, Height: height}
	var peak int64 = 1
	var total int64
	for _, d := range days {
		peak = max(peak, d.Success+d.Failed+d.Pending)
		total += d.Success + d.Failed + d.Pending
	}
	scaleMax := niceCeil(peak)
	plotH := height - top - bottom
	slot := (width - left - right) / max(len(days), 1)
	barW := slot * 7 / 10
	for i, d := range days {
		x := left + i*slot + (slot-barW)/2
		b := bar{X: x, Width: barW, Label: d.Day.Format("2 Jan"), LabelX: x + barW/2, BaseY: top + plotH, LabelY: top + plotH + 16,
			ShowLabel: i%2 == len(days)%2 || len(days) <= 7,
			Title: fmt.Sprintf("%s: %d successful, %d failed, %d pending; %s collected", d.Day.Format("Mon 2 Jan"),
				d.Success, d.Failed, d.Pending, kes(d.Collected))}
		y := top + plotH
		for _, part := range []struct {
			n     int64
			class string
		}{{d.Success, "bar-success"}, {d.Failed, "bar-failed"}, {d.Pending, "bar-pending"}} {
			h := int(part.n * int64(plotH) / scaleMax)
			if part.n > 0 && h == 0 {
				h = 1
			}
			if h == 0 {
				continue
			}
			y -= h
			b.Segments = append(b.Segments, segment{Y: y, Height: h, Class: part.class})
		}
		c.Bars = append(c.Bars, b)
	}
	for i := 0; i <= 4; i++ {
		v := scaleMax * int64(i) / 4
		c.Ticks = append(c.Ticks, tick{Y: top + plotH - int(v*int64(plotH)/scaleMax), Label: count(v)})
	}
	c.Summary = fmt.Sprintf("Payments per day over the last %d days, %s in all: successful, failed and pending stacked. The table below has the figures.",
		len(days), count(total))
	return c
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten.
func niceCeil(n int64) int64 {
	p := int64(1)
	for {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
		p *= 10
	}
}
