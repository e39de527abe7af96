package gateway

// ActorKind says through which door an operator action came.
type ActorKind string

// The doors an operator action can come through.
const (
	ActorCLI     ActorKind = "cli"     // the lipa command line; Name is the operating-system user
	ActorAPI     ActorKind = "api"     // the JSON admin API (X-ADMIN-KEY); Name is "admin-api"
	ActorConsole ActorKind = "console" // the operators' web console; Name is the operator's username
)

// Actor is who performed an operator action, recorded in the audit log with
// it. The zero Actor is not valid for an audited action.
type Actor struct {
	Kind ActorKind
	Name string
}

// String returns "kind:name", as audit lines show it.
func (a Actor) String() string { return string(a.Kind) + ":" + a.Name }
