package darajasim

import (
	"sort"
	"time"
)

// TransactionKind says how a transaction in the simulator's log came about.
type TransactionKind string

// Kinds of Transaction.
const (
	// KindSTK: an M-Pesa Express (STK push) payment the payer approved.
	KindSTK TransactionKind = "stk"
	// KindC2B: a customer's paybill or till payment (C2B simulate or
	// PayC2B), whether or not its confirmation was delivered.
	KindC2B TransactionKind = "c2b"
	// KindReversal: a reversal made through the Reversal API.
	KindReversal TransactionKind = "reversal"
)

// Transaction is one completed M-Pesa transaction in the simulator's log.
// The log is what Pull Transactions and Transaction Status answer from
// (docs/daraja.md "Pull Transactions", "Transaction Status"); it lives in
// memory and is lost with the Server.
type Transaction struct {
	// Receipt is the M-Pesa receipt (MpesaReceiptNumber, TransID, a
	// reversal's TransactionID).
	Receipt string
	Kind    TransactionKind
	// ShortCode is the organisation's shortcode: the BusinessShortCode of an
	// STK push, the paid shortcode of a C2B payment, the ReceiverParty of a
	// reversal. PartyB is an STK push's PartyB (the till of a Buy Goods
	// push); it equals ShortCode otherwise.
	ShortCode string
	PartyB    string
	// MSISDN is the customer: the payer, or the one a reversal refunded.
	MSISDN string
	// Amount is in whole shillings.
	Amount int64
	// BillRef is the account reference: an STK push's AccountReference, a
	// C2B payment's BillRefNumber.
	BillRef string
	// CommandID is CommandPayBill or CommandBuyGoods for payments, and
	// "TransactionReversal" for reversals.
	CommandID string
	// CompletedAt is when M-Pesa completed it (the Server's clock, UTC).
	CompletedAt time.Time
	// ConfirmationWithheld is true for a C2B payment whose validation and
	// confirmation were never sent (C2BPayment.NoConfirmation).
	ConfirmationWithheld bool
	// OriginatorConversationID and ConversationID are those of the request
	// that made the transaction (reversals only).
	OriginatorConversationID string
	ConversationID           string
	// Original is, for a reversal, the receipt it reversed.
	Original string
	// ReversedBy is the receipt of the reversal of this transaction, if any.
	ReversedBy string
}

// recordLocked appends t to the log. s.mu must be held.
func (s *Server) recordLocked(t Transaction) {
	t.CompletedAt = t.CompletedAt.UTC()
	if t.PartyB == "" {
		t.PartyB = t.ShortCode
	}
	s.ledger = append(s.ledger, &t)
	s.byReceipt[t.Receipt] = &t
}

// Transactions returns a copy of the simulator's transaction log, oldest
// first. Safe for concurrent use.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transaction, len(s.ledger))
	for i, t := range s.ledger {
		out[i] = *t
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CompletedAt.Before(out[j].CompletedAt) })
	return out
}

// TransactionByReceipt returns the logged transaction with that receipt.
// Safe for concurrent use.
func (s *Server) TransactionByReceipt(receipt string) (Transaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byReceipt[receipt]
	if !ok {
		return Transaction{}, false
	}
	return *t, true
}

// belongsTo reports whether t was paid to (or reversed by) shortCode,
// matching ShortCode or PartyB.
func (t *Transaction) belongsTo(shortCode string) bool {
	return t.ShortCode == shortCode || t.PartyB == shortCode
}
