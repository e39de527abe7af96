package lipa

import "time"

// An operator's settlement of a payment from the review queue: the value
// of Payment.ResolvedBy, and the FailureReason of a payment an operator
// settled FAILED.
const (
	ResolvedByOperator                    = "operator"
	ReasonSettledByOperator FailureReason = "settled_by_operator"
)

// Role is what an operator of the web console may do.
type Role string

// The operator roles.
const (
	// RoleAdmin sees everything and may act: create apps, rotate keys,
	// redeliver webhooks.
	RoleAdmin Role = "admin"
	// RoleViewer sees everything an admin sees and changes nothing: every
	// request of a viewer that would change something is refused.
	RoleViewer Role = "viewer"
)

// Valid reports whether r is RoleAdmin or RoleViewer.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleViewer }

// OperatorID identifies an operator account: "op_" followed by 26 lower-case
// base32 characters.
type OperatorID string

// Operator is a person who runs Lipa through the web console. Operators are
// not apps: they have a username, a password (stored only as a password
// hash) and a role. Times are UTC.
type Operator struct {
	ID       OperatorID
	Username string // 1–63 lower-case letters, digits, '.', '_' or '-'; unique
	Role     Role
	Disabled bool // a disabled operator cannot sign in, and their sessions end
	// LastSignInAt is when the operator last signed in; zero if never.
	LastSignInAt time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}
