package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// APIKeyPrefix starts every API key, so that a leaked key is recognisable
// (by secret scanners, in a log someone pastes).
const APIKeyPrefix = "lipa_"

// DemoAppName is the app that simulator mode creates on an empty database.
const DemoAppName = "demo"

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// newAPIKey returns a fresh API key ("lipa_" and 52 base32 characters, 256
// random bits), the SHA-256 hash Lipa stores instead of it, and a short hint
// of it for operators.
func newAPIKey() (key lipa.Secret, hash, hint string) {
	b := make([]byte, 32)
	rand.Read(b)
	k := APIKeyPrefix + strings.ToLower(idEncoding.EncodeToString(b))
	return lipa.Secret(k), hashKey(k), k[:len(APIKeyPrefix)+6] + "…"
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// CreateApp creates an app and returns it with its API key, which is shown
// this once: only its hash is stored. The name must be 1–63 characters of
// lower-case letters, digits, '.', '_' or '-' (Invalid, "invalid_app_name");
// a taken name is a Conflict ("app_exists"). The action is audited as
// actor's (Invalid "invalid_actor" for the zero Actor).
func (g *Gateway) CreateApp(ctx context.Context, actor Actor, name string) (*lipa.App, lipa.Secret, error) {
	if err := checkActor(actor); err != nil {
		return nil, "", err
	}
	if !appNameRE.MatchString(name) {
		return nil, "", lipa.InvalidField("invalid_app_name", "name",
			"app name %q must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	now := g.clock()
	app := &lipa.App{ID: lipa.AppID(newID("app_")), Name: name, CreatedAt: now, UpdatedAt: now}
	key, hash, hint := newAPIKey()
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.CreateApp(ctx, app, hash, hint); err != nil {
			return err
		}
		after, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		return g.recordAuditTx(ctx, tx, actor, AuditAppCreate, appTarget(name), "", nil, after)
	})
	if err != nil {
		return nil, "", err
	}
	g.log.InfoContext(ctx, "app created", "app", name, "actor", actor.String())
	return app, key, nil
}

// EnsureDemoApp creates the app "demo" when the database has no app at all,
// and returns its key; on a database that has apps it returns "" and false.
// Only simulator mode calls it; the creation is audited as actor's (the
// user who started lipa serve).
func (g *Gateway) EnsureDemoApp(ctx context.Context, actor Actor) (lipa.Secret, bool, error) {
	var n int
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { n, err = tx.CountApps(ctx); return err })
	if err != nil || n > 0 {
		return "", false, err
	}
	_, key, err := g.CreateApp(ctx, actor, DemoAppName)
	if errors.Is(err, sqlstore.ErrAppExists) {
		return "", false, nil // another replica made it first
	}
	return key, err == nil, err
}

// Authenticate returns the enabled app whose API key is key. A missing key
// is Unauthorized "missing_api_key"; an unknown one "invalid_api_key"; a
// disabled app's "app_disabled". Keys are compared by their SHA-256 hash,
// so the stored value never grants access on its own. A key seen before is
// resolved from memory as long as the database's auth epoch says no app's
// keys or enabled state changed since (keyCache); the epoch is read for
// each request, by a read that began after the request arrived and that
// concurrent requests share (epochReads), so a rotation or disable holds
// from the next request on.
func (g *Gateway) Authenticate(ctx context.Context, key string) (*lipa.App, error) {
	if key == "" {
		return nil, lipa.Errorf(lipa.Unauthorized, "missing_api_key", "send your app's API key in the X-API-KEY header")
	}
	now := g.clock()
	hash := hashKey(key)
	epoch, err := g.epochs.epoch(ctx, g.readAuthEpoch)
	if err != nil {
		return nil, err
	}
	app, ok := g.keys.get(hash, epoch, now)
	if !ok {
		var until time.Time
		err = g.db.Read(ctx, func(tx *sqlstore.Tx) (err error) { app, until, err = tx.AppForKey(ctx, hash, now); return err })
		if err == nil {
			g.keys.put(hash, epoch, app, until)
		}
	}
	if lipa.ErrorKind(err) == lipa.NotFound {
		return nil, lipa.Errorf(lipa.Unauthorized, "invalid_api_key", "the API key in X-API-KEY is not valid")
	}
	if err != nil {
		return nil, err
	}
	if app.Disabled {
		return nil, lipa.Errorf(lipa.Unauthorized, "app_disabled", "this app is disabled; ask the operator to enable it")
	}
	g.touch(ctx, app.ID, now)
	return app, nil
}

// readAuthEpoch reads the auth epoch (see epochReads).
func (g *Gateway) readAuthEpoch(ctx context.Context) (epoch int64, err error) {
	err = g.db.Read(ctx, func(tx *sqlstore.Tx) error { epoch, err = tx.AuthEpoch(ctx); return err })
	return epoch, err
}

// touch records the app's last use, at most once a minute per app and
// process, so authentication stays read-only on most requests.
func (g *Gateway) touch(ctx context.Context, id lipa.AppID, now time.Time) {
	if last, ok := g.touched.Load(id); ok && now.Sub(last.(time.Time)) < time.Minute {
		return
	}
	g.touched.Store(id, now)
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.TouchApp(ctx, id, now) }); err != nil {
		g.log.WarnContext(ctx, "record app key use", "app_id", id, "err", err)
	}
}

// RotateKey gives the named app a new API key, returned this once. The old
// key keeps working for KeyRotationGrace (so the app can switch without
// downtime), then stops; `SetAppDisabled` revokes every key at once. An
// unknown name is NotFound ("app_not_found"). Audited as actor's.
func (g *Gateway) RotateKey(ctx context.Context, actor Actor, name string) (lipa.Secret, time.Time, error) {
	if err := checkActor(actor); err != nil {
		return "", time.Time{}, err
	}
	key, hash, hint := newAPIKey()
	now := g.clock()
	graceUntil := now.Add(g.cfg.KeyRotationGrace)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		before, app, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := tx.SetAppKey(ctx, app.ID, hash, hint, graceUntil, now); err != nil {
			return err
		}
		after, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		after["old_key_valid_until"] = graceUntil.Format(time.RFC3339)
		return g.recordAuditTx(ctx, tx, actor, AuditAppRotateKey, appTarget(name), "", before, after)
	})
	if err != nil {
		return "", time.Time{}, err
	}
	g.log.InfoContext(ctx, "app key rotated", "app", name, "old_key_valid_until", graceUntil.Format(time.RFC3339), "actor", actor.String())
	return key, graceUntil, nil
}

// SetAppDisabled disables (true) or enables (false) the named app; a
// disabled app's key is refused at once. An unknown name is NotFound.
// Audited as actor's.
func (g *Gateway) SetAppDisabled(ctx context.Context, actor Actor, name string, disabled bool) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	action := AuditAppEnable
	if disabled {
		action = AuditAppDisable
	}
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		before, app, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := tx.SetAppDisabled(ctx, app.ID, disabled, g.clock()); err != nil {
			return err
		}
		after, _, err := appStateTx(ctx, tx, name)
		if err != nil {
			return err
		}
		return g.recordAuditTx(ctx, tx, actor, action, appTarget(name), "", before, after)
	})
	if err == nil {
		g.log.InfoContext(ctx, "app updated", "app", name, "disabled", disabled, "actor", actor.String())
	}
	return err
}

// appTarget is the audit log's target for the named app.
func appTarget(name string) string { return "app:" + name }

// appStateTx returns what the audit log records of an app (never its key
// or webhook secret; a webhook URL's password is redacted) and the app.
func appStateTx(ctx context.Context, tx *sqlstore.Tx, name string) (map[string]any, *lipa.App, error) {
	app, err := tx.AppByName(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	hint, _, err := tx.AppKeyUsage(ctx, app.ID)
	if err != nil {
		return nil, nil, err
	}
	wh, err := tx.AppWebhook(ctx, app.ID)
	if err != nil {
		return nil, nil, err
	}
	hook := wh.URL
	if u, err := url.Parse(hook); err == nil && u.User != nil {
		hook = u.Redacted()
	}
	return map[string]any{"id": app.ID, "name": app.Name, "disabled": app.Disabled, "key_hint": hint,
		"webhook_url": hook, "webhook_paused": !wh.PausedAt.IsZero()}, app, nil
}

// AppInfo is an app as operators list it.
type AppInfo struct {
	lipa.App
	KeyHint    string    // the start of the current API key, e.g. "lipa_abcdef…"
	LastUsedAt time.Time // when a key of the app was last used (to the minute); zero if never
	WebhookURL string    // "" when the app has no webhook; credentials in it are shown as *** (RedactURLUserinfo)
	PausedAt   time.Time // when its webhook was paused after failing for the whole retry span; zero if not
}

// Apps lists every app by name.
func (g *Gateway) Apps(ctx context.Context) ([]AppInfo, error) {
	var out []AppInfo
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		apps, err := tx.Apps(ctx)
		if err != nil {
			return err
		}
		for _, a := range apps {
			hint, used, err := tx.AppKeyUsage(ctx, a.ID)
			if err != nil {
				return err
			}
			wh, err := tx.AppWebhook(ctx, a.ID)
			if err != nil {
				return err
			}
			out = append(out, AppInfo{App: a, KeyHint: hint, LastUsedAt: used, WebhookURL: RedactURLUserinfo(wh.URL), PausedAt: wh.PausedAt})
		}
		return nil
	})
	return out, err
}
