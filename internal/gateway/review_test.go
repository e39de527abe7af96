package gateway_test

import "github.com/lipa-gateway/lipa/internal/gateway"

// testOperator is the operator the tests' audited actions are recorded for.
var testOperator = gateway.Actor{Kind: gateway.ActorCLI, Name: "tester"}
