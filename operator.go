package lipa

// An operator's settlement of a payment from the review queue: the value
// of Payment.ResolvedBy, and the FailureReason of a payment an operator
// settled FAILED.
const (
	ResolvedByOperator                    = "operator"
	ReasonSettledByOperator FailureReason = "settled_by_operator"
)
