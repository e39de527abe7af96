package lipa

import (
	"fmt"
	"strings"
	"time"
)

// Status is where a payment stands. SUCCESS and FAILED are final: nothing
// moves a payment out of them (see Payment.Settle and docs/ARCHITECTURE.md).
type Status string

// The three statuses, as the earlier service named them.
const (
	StatusPending Status = "PENDING" // created, waiting for Daraja's verdict
	StatusSuccess Status = "SUCCESS" // the customer paid; claimable once
	StatusFailed  Status = "FAILED"  // no money moved; see FailureReason
)

// Final reports whether s is SUCCESS or FAILED.
func (s Status) Final() bool { return s == StatusSuccess || s == StatusFailed }

// PaymentType is the channel a payment came through.
type PaymentType string

// The payment channels.
const (
	TypeSTK PaymentType = "STK" // an STK push that an app initiated
	TypeC2B PaymentType = "C2B" // a paybill or till payment the customer made on their own
)

// FailureReason is a stable snake_case code saying why a payment is FAILED.
// Apps may branch on it; the wording of Daraja's ResultDesc changes by
// channel and year, the code does not.
type FailureReason string

// The failure reasons. ResultCode values are those of the STK callback and
// STK push query (docs/daraja.md "STK callback").
const (
	ReasonCancelledByUser     FailureReason = "cancelled_by_user"    // ResultCode 1032, 1031
	ReasonInsufficientFunds   FailureReason = "insufficient_funds"   // ResultCode 1
	ReasonWrongPIN            FailureReason = "wrong_pin"            // ResultCode 2001 (on STK only)
	ReasonCustomerUnreachable FailureReason = "customer_unreachable" // ResultCode 1037, 1036
	ReasonExpired             FailureReason = "expired"              // ResultCode 1019, or no verdict in time
	ReasonLimitExceeded       FailureReason = "limit_exceeded"       // ResultCode 2, 3, 4, 8
	ReasonRuleLimited         FailureReason = "rule_limited"         // ResultCode 17: same amount, same customer, too soon
	ReasonSubscriberBusy      FailureReason = "subscriber_busy"      // ResultCode 1001 or 500.001.1001 "Unable to lock subscriber"
	ReasonPromptFailed        FailureReason = "prompt_failed"        // ResultCode 1025, 1101, 9999: the prompt could not be sent
	ReasonPINLocked           FailureReason = "pin_locked"           // ResultCode 8006
	ReasonNotPermitted        FailureReason = "not_permitted"        // ResultCode 2028, SFC_IC0003: shortcode/till set-up
	ReasonDarajaRejected      FailureReason = "daraja_rejected"      // Daraja refused the STK push request itself
	ReasonDarajaUnreachable   FailureReason = "daraja_unreachable"   // the STK push never reached Daraja
	ReasonRateLimited         FailureReason = "rate_limited"         // Daraja refused the STK push for the rate of requests (HTTP 429, 500.003.02/03); no prompt was sent
	ReasonDarajaUnavailable   FailureReason = "daraja_unavailable"   // Daraja refused the STK push while under maintenance (00.002.1001); no prompt was sent
	ReasonUnknownResult       FailureReason = "unknown_result_code"  // a non-zero ResultCode Lipa does not know
)

// ReasonForResultCode maps a non-zero STK ResultCode (callback or query) to a
// FailureReason. It is for STK results only: the same codes mean other things
// in B2C and status results (2001 is a wrong PIN here, bad initiator
// credentials there).
func ReasonForResultCode(code string) FailureReason {
	switch code {
	case "1032", "1031":
		return ReasonCancelledByUser
	case "1":
		return ReasonInsufficientFunds
	case "2001":
		return ReasonWrongPIN
	case "1037", "1036":
		return ReasonCustomerUnreachable
	case "1019":
		return ReasonExpired
	case "2", "3", "4", "8":
		return ReasonLimitExceeded
	case "17":
		return ReasonRuleLimited
	case "1001":
		return ReasonSubscriberBusy
	case "1025", "1101", "9999":
		return ReasonPromptFailed
	case "8006":
		return ReasonPINLocked
	case "2028", "SFC_IC0003":
		return ReasonNotPermitted
	}
	return ReasonUnknownResult
}

// PaymentID identifies a payment: "pay_" followed by 26 lower-case base32
// characters. It is opaque to apps.
type PaymentID string

// AppID identifies an app: "app_" followed by 26 lower-case base32 characters.
type AppID string

// Payment is one M-Pesa payment, whichever channel reported it. Times are UTC.
type Payment struct {
	ID          PaymentID
	AppID       AppID // empty for an unclaimed C2B payment in the shared intake pool
	AppName     string
	Type        PaymentType
	Status      Status
	PhoneNumber string // MSISDN for STK; for C2B Daraja's MSISDN as given (often masked or a SHA-256 hash)
	Amount      Amount
	Currency    string // always "KES"
	// Reference is the app's own reference (STK), or the payer's account
	// number, BillRefNumber (C2B), stored whole.
	Reference        string
	AccountReference string // Daraja's AccountReference (STK, ≤ 12 characters) or BillRefNumber (C2B)
	Description      string
	ShortCode        string // the paybill or till (BusinessShortCode) the payment was made to
	TransactionType  string // CustomerPayBillOnline, CustomerBuyGoodsOnline, or C2B's TransactionType

	MpesaReceiptNumber string // MpesaReceiptNumber (STK) or TransID (C2B); unique across payments
	CheckoutRequestID  string
	MerchantRequestID  string
	CustomerMessage    string
	ResultCode         string // Daraja's ResultCode as text ("0", "1032"); empty until a verdict
	ResultDesc         string
	FailureReason      FailureReason
	// ResolvedBy says what settled the payment: ResolvedByCallback,
	// ResolvedByQuery, ResolvedByExpiry, ResolvedByPush (Daraja refused the
	// push), ResolvedByConfirmation (C2B), ResolvedByPull (Pull
	// Transactions); empty while PENDING.
	ResolvedBy string

	Claimed   bool
	ClaimedAt time.Time
	ClaimedBy AppID

	TransactionDate time.Time // when M-Pesa completed it (callback TransactionDate, C2B TransTime)
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// What settled a payment (Payment.ResolvedBy).
const (
	ResolvedByCallback     = "callback"     // Safaricom's STK callback
	ResolvedByQuery        = "query"        // an STK push query (no receipt number until a late callback brings one)
	ResolvedByExpiry       = "expiry"       // no verdict within the pending expiry
	ResolvedByPush         = "push"         // the STK push itself was refused or never sent
	ResolvedByConfirmation = "confirmation" // a C2B confirmation
	ResolvedByPull         = "pull"         // Daraja's Pull Transactions: a C2B payment whose confirmation never came, or an STK push whose answer or callback was lost
)

// Outcome is what one report from Safaricom (an STK callback, an STK push
// query answer, a C2B confirmation) says about a payment.
type Outcome struct {
	Status          Status // SUCCESS or FAILED
	ResultCode      string
	ResultDesc      string
	FailureReason   FailureReason // for FAILED
	Receipt         string        // for SUCCESS, when the report carries one
	Amount          Amount        // for SUCCESS, when the report carries one (0 when it does not)
	PhoneNumber     string        // when the report carries one
	TransactionDate time.Time     // zero when the report carries none
	Source          string        // what reported it: a ResolvedBy value
}

// Decision is what Settle did with an Outcome.
type Decision string

// The decisions of Settle.
const (
	DecisionApplied   Decision = "applied"   // the payment changed
	DecisionDuplicate Decision = "duplicate" // the report repeats what the payment already says; nothing changed
	DecisionConflict  Decision = "conflict"  // the report contradicts a final payment; nothing changed, flag it
)

// Settle applies a report to the payment. It is the one place that moves a
// payment between statuses:
//
//   - PENDING takes any SUCCESS or FAILED outcome.
//   - A final payment never changes status. A report that agrees with it (same
//     status, and for SUCCESS no other receipt) is a DecisionDuplicate; one that
//     disagrees is a DecisionConflict.
//   - A SUCCESS payment that has no receipt yet (settled by an STK push query)
//     takes the receipt of a later SUCCESS report.
//
// Settle changes p only when it returns DecisionApplied; it sets UpdatedAt to now.
func (p *Payment) Settle(o Outcome, now time.Time) Decision {
	if o.Status != StatusSuccess && o.Status != StatusFailed {
		return DecisionConflict
	}
	if p.Status.Final() {
		if o.Status != p.Status {
			return DecisionConflict
		}
		if o.Status == StatusSuccess && o.Receipt != "" && p.MpesaReceiptNumber != o.Receipt {
			if p.MpesaReceiptNumber != "" {
				return DecisionConflict
			}
			p.MpesaReceiptNumber = o.Receipt
			p.fillFrom(o)
			p.UpdatedAt = now
			return DecisionApplied
		}
		return DecisionDuplicate
	}
	p.Status = o.Status
	p.ResolvedBy = o.Source
	p.ResultCode = o.ResultCode
	p.ResultDesc = o.ResultDesc
	if o.Status == StatusFailed {
		p.FailureReason = o.FailureReason
		if p.FailureReason == "" {
			p.FailureReason = ReasonForResultCode(o.ResultCode)
		}
	} else {
		p.FailureReason = ""
		p.MpesaReceiptNumber = o.Receipt
		p.fillFrom(o)
	}
	p.UpdatedAt = now
	return DecisionApplied
}

func (p *Payment) fillFrom(o Outcome) {
	if !o.TransactionDate.IsZero() {
		p.TransactionDate = o.TransactionDate.UTC()
	}
	if o.PhoneNumber != "" && p.PhoneNumber == "" {
		p.PhoneNumber = o.PhoneNumber
	}
}

// App is an external application that takes payments through Lipa with its
// own API key.
type App struct {
	ID        AppID
	Name      string
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NairobiTime is Kenya's time zone (East Africa Time, UTC+3, no daylight
// saving), in which Daraja writes every timestamp. A fixed zone, so Lipa does
// not depend on the tzdata of the machine it runs on.
var NairobiTime = time.FixedZone("EAT", 3*60*60)

// ParseDarajaTime reads Daraja's yyyyMMddHHmmss timestamp (TransactionDate,
// TransTime, Timestamp), which is Kenya time, and returns it in UTC.
func ParseDarajaTime(s string) (time.Time, error) {
	if len(s) != 14 || strings.Trim(s, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("Daraja time %q is not 14 digits (yyyyMMddHHmmss)", s)
	}
	t, err := time.ParseInLocation("20060102150405", s, NairobiTime)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
