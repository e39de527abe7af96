package gateway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Run does the gateway's background work until ctx ends, then waits for all
// of it to stop and returns nil:
//
//   - reconciliation: a pass every ReconcileInterval(ReconcileAfter);
//   - webhook delivery: a pass whenever this process commits an event with a
//     webhook to deliver or a delivery slot comes free, and every 250 ms for
//     retries coming due and events written by other replicas (see
//     DeliverWebhooks);
//   - the Pull Transactions backfill every LIPA_PULL_INTERVAL (PullLoop)
//     and the Transaction Status check of refunds without a Result
//     (RefundLoop), when Daraja's initiator APIs are configured;
//   - the dashboard's closed days: kept at start and every hour
//     (KeepClosedDays), so no dashboard view reads a whole day of payments;
//   - the goroutines requests start (callback confirmations) and the
//     delivery attempts.
//
// A slow pass of one loop never delays the other. Every loop is safe on
// several replicas at once: each payment and each delivery is leased by one
// of them. When ctx ends, attempts and confirmations under way are cut
// short (an attempt cut short is recorded as failed and retried; an
// unconfirmed callback is left to the reconciler), and Run returns once
// every one of them has finished. The caller closes the database only after
// Run has returned.
//
// Run returns an error, at once, only when it is already running.
func (g *Gateway) Run(ctx context.Context) error {
	g.runMu.Lock()
	if g.runCtx != nil {
		g.runMu.Unlock()
		return errors.New("gateway: Run is already running")
	}
	g.runCtx = ctx
	g.runMu.Unlock()

	var loops sync.WaitGroup
	loops.Go(func() { g.reconcileLoop(ctx, ReconcileInterval(g.cfg.ReconcileAfter)) })
	loops.Go(func() { g.deliveryLoop(ctx) })
	loops.Go(func() { g.keepDaysLoop(ctx) })
	loops.Go(func() { g.PullLoop(ctx) })
	loops.Go(func() { g.RefundLoop(ctx) })
	loops.Wait()
	g.bg.Wait()

	g.runMu.Lock()
	g.runCtx = nil
	g.runMu.Unlock()
	return nil
}

// reconcileLoop runs a reconciliation pass every interval until ctx ends.
func (g *Gateway) reconcileLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.Reconcile(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("reconciliation pass failed", "err", err)
			}
		}
	}
}

// deliveryLoop runs a delivery pass whenever it is woken (wakeDeliveries)
// and every webhookPoll, until ctx ends.
func (g *Gateway) deliveryLoop(ctx context.Context) {
	t := time.NewTicker(webhookPoll)
	defer t.Stop()
	for {
		if _, err := g.DeliverWebhooks(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("webhook delivery pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
		case <-t.C:
		}
	}
}

// spawn runs fn on a goroutine of its own that Run and Wait wait for. fn's
// context is Run's while Run runs (it ends at shutdown), and never ends
// otherwise (tests and CLI commands that do not use Run, and Wait).
func (g *Gateway) spawn(fn func(ctx context.Context)) {
	g.runMu.Lock()
	ctx := g.runCtx
	g.bg.Add(1)
	g.runMu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	go func() {
		defer g.bg.Done()
		fn(ctx)
	}()
}
