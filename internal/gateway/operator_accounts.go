package gateway

import (
	"context"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// CreateOperator creates an operator account for the web console with the
// given role and password; only the password's argon2id hash is stored.
// The username follows the rules of app names (1–63 lower-case letters,
// digits, '.', '_' or '-', starting with a letter or digit).
//
// The creation is audited (operator.create), never with the password.
//
// Errors: Invalid "invalid_actor", "invalid_username", "invalid_role",
// "invalid_password" (fewer than MinPasswordLength characters, or over
// MaxPasswordLength bytes); Conflict "operator_exists".
func (g *Gateway) CreateOperator(ctx context.Context, actor Actor, username string, role lipa.Role, password lipa.Secret) (*lipa.Operator, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if !appNameRE.MatchString(username) {
		return nil, lipa.InvalidField("invalid_username", "username",
			"username %q must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", username)
	}
	if !role.Valid() {
		return nil, lipa.InvalidField("invalid_role", "role", "role %q must be admin or viewer", role)
	}
	if err := checkPasswordRules(password); err != nil {
		return nil, err
	}
	now := g.clock()
	o := &lipa.Operator{ID: lipa.OperatorID(newID("op_")), Username: username, Role: role, CreatedAt: now, UpdatedAt: now}
	hash := hashPassword(password)
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.CreateOperator(ctx, o, hash); err != nil {
			return err
		}
		return g.recordAuditTx(ctx, tx, actor, AuditOperatorCreate, operatorTarget(o.Username), "", nil, auditOperator(o))
	}); err != nil {
		return nil, err
	}
	g.log.Info("operator created", "operator", username, "role", role, "by", actor.String())
	return o, nil
}

// Operators lists every operator account by username.
func (g *Gateway) Operators(ctx context.Context) ([]lipa.Operator, error) {
	var out []lipa.Operator
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) { out, err = tx.Operators(ctx); return err })
	return out, err
}

// SetOperatorDisabled disables (true) or enables (false) an operator. A
// disabled operator cannot sign in, and every session they have ends at
// once. The change is audited (operator.disable, operator.enable). Errors:
// Invalid "invalid_actor"; NotFound "operator_not_found".
func (g *Gateway) SetOperatorDisabled(ctx context.Context, actor Actor, username string, disabled bool) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	var ended int64
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		o, _, err := tx.OperatorByUsername(ctx, normUsername(username))
		if err != nil {
			return err
		}
		if err := tx.SetOperatorDisabled(ctx, o.ID, disabled, g.clock()); err != nil {
			return err
		}
		before := *o
		o.Disabled = disabled
		if disabled {
			if ended, err = tx.DeleteOperatorSessions(ctx, o.ID); err != nil {
				return err
			}
		}
		action := AuditOperatorEnable
		if disabled {
			action = AuditOperatorDisable
		}
		after := auditOperator(o)
		after["sessions_ended"] = ended
		return g.recordAuditTx(ctx, tx, actor, action, operatorTarget(o.Username), "", auditOperator(&before), after)
	})
	if err == nil {
		g.log.Info("operator updated", "operator", username, "disabled", disabled, "sessions_ended", ended, "by", actor.String())
	}
	return err
}

// SetOperatorPassword gives an operator a new password and ends every
// session they have. The change is audited (operator.set_password) without
// the password or its hash. Errors: Invalid "invalid_actor",
// "invalid_password"; NotFound "operator_not_found".
func (g *Gateway) SetOperatorPassword(ctx context.Context, actor Actor, username string, password lipa.Secret) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := checkPasswordRules(password); err != nil {
		return err
	}
	hash := hashPassword(password)
	var ended int64
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		o, _, err := tx.OperatorByUsername(ctx, normUsername(username))
		if err != nil {
			return err
		}
		if err := tx.SetOperatorPassword(ctx, o.ID, hash, g.clock()); err != nil {
			return err
		}
		if ended, err = tx.DeleteOperatorSessions(ctx, o.ID); err != nil {
			return err
		}
		after := auditOperator(o)
		after["sessions_ended"] = ended
		return g.recordAuditTx(ctx, tx, actor, AuditOperatorPassword, operatorTarget(o.Username), "", nil, after)
	})
	if err == nil {
		g.log.Info("operator password changed", "operator", username, "sessions_ended", ended, "by", actor.String())
	}
	return err
}

// normUsername is a username as typed, in the form it is stored: trimmed,
// lower case.
func normUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// operatorTarget is an operator account as an audit target.
func operatorTarget(username string) string { return "operator:" + username }

// auditOperator is an operator account as the audit log shows it: no
// password hash, no session.
func auditOperator(o *lipa.Operator) map[string]any {
	return map[string]any{"id": o.ID, "username": o.Username, "role": o.Role, "disabled": o.Disabled}
}
