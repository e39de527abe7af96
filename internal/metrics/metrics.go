// Package metrics keeps Lipa's Prometheus metrics. A Metrics value owns its
// own registry (never the process-wide default), so each server, and each
// test, counts only its own work; cmd/lipa builds one and hands it to the
// API, the gateway and the Daraja client's hook.
//
// Every method is safe for concurrent use, and a nil *Metrics counts
// nothing: components built without metrics (tests, CLI commands) pass nil.
package metrics

import (
	"context"
	"database/sql"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and Lipa's own collectors. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	darajaRequests  *prometheus.CounterVec
	darajaDuration  *prometheus.HistogramVec
	paymentsSettled *prometheus.CounterVec
	paymentsClaimed prometheus.Counter
	callbackLag     prometheus.Histogram
	reconciled      *prometheus.CounterVec
	webhookAttempts *prometheus.CounterVec
	webhookFailed   prometheus.Counter
	webhookLag      prometheus.Histogram
}

// New returns Metrics with a registry of its own holding Lipa's metrics and
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lipa_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lipa_http_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its answer, by route pattern, method and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method", "status"})
	m.darajaRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lipa_daraja_requests_total",
		Help: "HTTP calls to Daraja, by API and outcome (ok, api_error, auth_error, bad_response, timeout, unreachable, canceled, transport_error).",
	}, []string{"api", "outcome"})
	m.darajaDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lipa_daraja_request_duration_seconds",
		Help:    "Duration of HTTP calls to Daraja, by API and outcome.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60},
	}, []string{"api", "outcome"})
	m.paymentsSettled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lipa_payments_settled_total",
		Help: "Payments that became final, by type (STK, C2B), status (SUCCESS, FAILED) and failure reason (none for SUCCESS).",
	}, []string{"type", "status", "reason"})
	m.paymentsClaimed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lipa_payments_claimed_total",
		Help: "Payments claimed by an app.",
	})
	m.callbackLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "lipa_stk_callback_lag_seconds",
		Help:    "Time from storing an STK push to receiving its first callback.",
		Buckets: []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800},
	})
	m.reconciled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lipa_reconcile_payments_total",
		Help: "PENDING payments the reconciler looked at, by outcome (succeeded, failed, expired, deferred; held: past the expiry, left PENDING for the review queue, also counted as deferred).",
	}, []string{"outcome"})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lipa_webhook_attempts_total",
		Help: "Webhook delivery attempts, by result (delivered: a 2xx answer; rejected: another HTTP answer; no_answer: none).",
	}, []string{"result"})
	m.webhookFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lipa_webhook_deliveries_failed_total",
		Help: "Webhook deliveries given up after the whole retry span (the app's webhook is paused).",
	})
	m.webhookLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "lipa_webhook_delivery_lag_seconds",
		Help:    "Time from an event's commit to its delivery (a 2xx answer), retries included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400},
	})
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.darajaRequests, m.darajaDuration, m.paymentsSettled,
		m.paymentsClaimed, m.callbackLag, m.reconciled, m.webhookAttempts, m.webhookFailed, m.webhookLag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in Prometheus' text exposition format (or
// OpenMetrics when the scraper asks for it). It has no access control of
// its own: mount it behind the operators' authentication.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Registry returns the registry, for a component that brings collectors of
// its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchDB exports the connection pool's statistics (go_sql_* with
// db_name=name: open, in use and idle connections, waits and their
// duration, connections closed for each limit).
func (m *Metrics) WatchDB(name string, db *sql.DB) {
	if m == nil {
		return
	}
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// WatchWebhookBacklog exports lipa_webhook_backlog, asking backlog at each
// scrape (bounded by 5 s; a failed count is reported as NaN).
func (m *Metrics) WatchWebhookBacklog(backlog func(context.Context) (int64, error)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lipa_webhook_backlog",
		Help: "Webhook deliveries pending in the database (due, waiting for a retry, or under way), all apps and replicas.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := backlog(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}))
}

// ObserveHTTP counts one answered request: route is the pattern it matched
// ("unmatched" when none), method one of the standard methods or "OTHER".
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := strconv.Itoa(status)
	m.httpRequests.WithLabelValues(route, method, code).Inc()
	m.httpDuration.WithLabelValues(route, method, code).Observe(d.Seconds())
}

// ObserveDaraja counts one HTTP call to Daraja: api names the call
// ("oauth", "stk_push", "stk_query", …), outcome how it ended.
func (m *Metrics) ObserveDaraja(api, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.darajaRequests.WithLabelValues(api, outcome).Inc()
	m.darajaDuration.WithLabelValues(api, outcome).Observe(d.Seconds())
}

// PaymentSettled counts a payment that became final; reason is its failure
// reason, "" for a SUCCESS.
func (m *Metrics) PaymentSettled(typ, status, reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		reason = "none"
	}
	m.paymentsSettled.WithLabelValues(typ, status, reason).Inc()
}

// PaymentClaimed counts a claim that won.
func (m *Metrics) PaymentClaimed() {
	if m == nil {
		return
	}
	m.paymentsClaimed.Inc()
}

// CallbackLag records how long an STK push waited for its first callback.
func (m *Metrics) CallbackLag(d time.Duration) {
	if m == nil {
		return
	}
	m.callbackLag.Observe(max(d, 0).Seconds())
}

// Reconciled counts n payments of one reconciliation outcome.
func (m *Metrics) Reconciled(outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.reconciled.WithLabelValues(outcome).Add(float64(n))
}

// The results of a webhook attempt.
const (
	WebhookDelivered = "delivered" // a 2xx answer
	WebhookRejected  = "rejected"  // another HTTP answer
	WebhookNoAnswer  = "no_answer" // no HTTP answer (refused, timed out, cut short)
)

// WebhookAttempt counts one attempt by its result (Webhook…).
func (m *Metrics) WebhookAttempt(result string) {
	if m == nil {
		return
	}
	m.webhookAttempts.WithLabelValues(result).Inc()
}

// WebhookFailed counts a delivery given up.
func (m *Metrics) WebhookFailed() {
	if m == nil {
		return
	}
	m.webhookFailed.Inc()
}

// WebhookDelivered records the lag of an event delivered now.
func (m *Metrics) WebhookDelivered(lag time.Duration) {
	if m == nil {
		return
	}
	m.webhookLag.Observe(max(lag, 0).Seconds())
}
