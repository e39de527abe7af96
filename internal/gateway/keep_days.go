package gateway

import (
	"context"
	"time"
)

// DashboardDays is how many Kenya days the operators' dashboard covers,
// today included.
const DashboardDays = 14

// keepDaysInterval is how often Run computes and keeps the dashboard's
// closed days.
const keepDaysInterval = time.Hour

// KeepClosedDays computes and keeps the figures of every day of the last
// DashboardDays whose payments can no longer change (see DayStats), so that
// no dashboard view pays for reading a whole day of payments. It is safe on
// several replicas at once: a day kept twice is kept with the same figures.
// Run calls it at start and every hour.
func (g *Gateway) KeepClosedDays(ctx context.Context) error {
	today := KenyaDay(g.clock())
	for i := 1; i < DashboardDays; i++ {
		if _, err := g.DayStats(ctx, today.AddDate(0, 0, -i)); err != nil {
			return err
		}
	}
	return nil
}

// keepDaysLoop runs KeepClosedDays now and every keepDaysInterval until ctx
// ends.
func (g *Gateway) keepDaysLoop(ctx context.Context) {
	t := time.NewTicker(keepDaysInterval)
	defer t.Stop()
	for {
		if err := g.KeepClosedDays(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("keeping the dashboard's closed days failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
