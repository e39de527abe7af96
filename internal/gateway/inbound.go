package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// InboundKind names what Safaricom sent to a Safaricom-facing endpoint.
type InboundKind = sqlstore.InboundKind

// The kinds of inbound request the API layer passes on.
const (
	KindSTKCallback     = sqlstore.InboundSTKCallback
	KindC2BValidation   = sqlstore.InboundC2BValidation
	KindC2BConfirmation = sqlstore.InboundC2BConfirmation
)

// Inbound is one HTTP request from Safaricom as the API layer received it.
type Inbound struct {
	Path       string
	SourceAddr string // the peer address (ip:port)
	Body       []byte // raw, as received
}

// maxRejectedBody is how much of a refused request's body is kept: enough
// to see what it was, not enough to fill the disk for whoever sends it.
const maxRejectedBody = 2048

// RejectInbound stores a payload from an unauthenticated caller that failed
// a callback check (path token, source address) with the reason; it
// changes no payment, and logs only a failure to store (the caller logs
// the refusal). Only the first 2 KiB of the body are stored,
// with the full length and SHA-256 in the note.
func (g *Gateway) RejectInbound(ctx context.Context, kind InboundKind, in Inbound, reason string) {
	body := in.Body
	if len(body) > maxRejectedBody {
		sum := sha256.Sum256(body)
		reason = fmt.Sprintf("%s; body of %d bytes (sha256 %x) cut to %d", reason, len(body), sum, maxRejectedBody)
		body = body[:maxRejectedBody]
	}
	msg := &sqlstore.Inbound{Kind: kind, Path: in.Path, SourceAddr: in.SourceAddr, ReceivedAt: g.clock(), Body: body,
		Outcome: sqlstore.OutcomeRejected, Note: reason}
	if kind == sqlstore.InboundSTKCallback {
		if cb, err := daraja.ParseSTKCallback(in.Body); err == nil {
			msg.CheckoutRequestID = cb.CheckoutRequestID
		}
	}
	ctx = context.WithoutCancel(ctx)
	// The caller logs the refusal (under its own limits); only a failure
	// to keep the record is logged here.
	if err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error { return tx.InsertInbound(ctx, msg) }); err != nil {
		g.log.ErrorContext(ctx, "rejected Safaricom-facing request not stored", "kind", kind, "source", in.SourceAddr, "reason", reason, "err", err)
	}
}

// isMSISDN reports whether s is a plain 2547/2541 phone number (not a mask
// or a hash), which a cross-check can compare.
func isMSISDN(s string) bool {
	if len(s) != 12 || !strings.HasPrefix(s, "254") {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
