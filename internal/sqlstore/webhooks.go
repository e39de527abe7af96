package sqlstore

// This file holds the webhook columns of the apps table.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa"
)

// Webhook is an app's webhook settings.
type Webhook struct {
	URL      string
	Secret   lipa.Secret
	PausedAt time.Time // zero unless deliveries failed for the whole retry span
}

// SetAppWebhook sets (or with an empty url, removes) the app's webhook URL
// and signing secret, and resumes its deliveries.
func (t *Tx) SetAppWebhook(ctx context.Context, id lipa.AppID, url string, secret lipa.Secret, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET webhook_url = ?, webhook_secret = ?, webhook_paused_at = NULL, updated_at = ? WHERE id = ?",
		url, secret.Reveal(), dbTime(now), id)
	if err != nil {
		return fmt.Errorf("set webhook: %w", err)
	}
	return nil
}

// AppWebhook returns the app's webhook settings (an empty URL when none).
func (t *Tx) AppWebhook(ctx context.Context, id lipa.AppID) (*Webhook, error) {
	var w Webhook
	var secret string
	var paused sql.NullTime
	err := t.queryRow(ctx, "SELECT webhook_url, webhook_secret, webhook_paused_at FROM apps WHERE id = ?", id).Scan(&w.URL, &secret, &paused)
	if err != nil {
		return nil, notFound(err, "app_not_found", "no such app")
	}
	w.Secret, w.PausedAt = lipa.Secret(secret), fromNull(paused)
	return &w, nil
}

// PauseWebhook stops deliveries to the app until its webhook is set again or
// an operator redelivers.
func (t *Tx) PauseWebhook(ctx context.Context, id lipa.AppID, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE apps SET webhook_paused_at = ? WHERE id = ? AND webhook_paused_at IS NULL", dbTime(now), id)
	if err != nil {
		return fmt.Errorf("pause webhook: %w", err)
	}
	return nil
}
