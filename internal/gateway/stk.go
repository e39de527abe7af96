package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/daraja"
	"github.com/lipa-gateway/lipa/internal/sqlstore"
)

// Field limits of an STK push (docs/daraja.md "M-Pesa Express").
const (
	MaxReferenceLength        = 100 // Lipa's own reference, stored whole
	MaxAccountReferenceLength = 12  // Daraja's AccountReference
	MaxTransactionDescLength  = 13  // Daraja's TransactionDesc; longer descriptions are cut in what is sent
	MaxDescriptionLength      = 100 // Lipa's stored description
	DefaultDescription        = "Payment"
)

// STKPushRequest is an app's request to prompt a customer's phone, with
// values as the app sent them (text; the API layer turns JSON numbers into
// their digits).
type STKPushRequest struct {
	PhoneNumber      string // any common Kenyan form, see lipa.ParsePhone
	Amount           string // whole shillings, see lipa.ParseSTKAmount
	Reference        string // required, 1–100 characters
	AccountReference string // optional, 1–12 characters; default Reference when it fits
	Description      string // optional; default "Payment"
	// IdempotencyKey, when not empty, makes the request safe to repeat: a
	// later request of the same app with the same key and the same fields
	// gets the first answer and sends no second prompt.
	IdempotencyKey string
}

// requestHash identifies an STK push by what it asks for, after
// validation (normalised phone, amount, reference, account reference,
// description with its default), to tell a true repeat of an
// Idempotency-Key from a different request reusing it: "0712345678" and
// "254712345678", 10 and "10.00", are the same request.
func requestHash(p *lipa.Payment) string {
	h := sha256.New()
	for _, f := range []string{p.PhoneNumber, p.Amount.String(), p.Reference, p.AccountReference, p.Description} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// STKPushResult is what InitiateSTKPush reports: the stored payment and
// Daraja's answer as received; or, for a repeated Idempotency-Key, the first
// request's answer as it was sent (Replay).
type STKPushResult struct {
	Payment        *lipa.Payment
	DarajaResponse json.RawMessage
	Replay         *Replay
}

// Replay is the answer first given to a request with an Idempotency-Key.
type Replay struct {
	Status int
	Body   []byte
}

// InitiateSTKPush validates the request, stores the payment as PENDING, and
// only then asks Daraja to prompt the customer, outside any transaction. On
// Daraja's acceptance it saves the CheckoutRequestID and MerchantRequestID
// and applies any callback that arrived before them.
//
// Errors: Invalid (invalid_phone_number, invalid_amount, invalid_reference,
// invalid_account_reference, invalid_description) before anything is
// stored. After the payment is stored, every error carries its payment_id
// in Details:
//   - Conflict "subscriber_busy": Daraja says the customer has another
//     prompt open (500.001.1001); the payment is FAILED.
//   - Upstream "daraja_error": Daraja refused the push; the payment is FAILED
//     with Daraja's code and message. A refusal naming the customer's phone
//     number or the amount is Invalid instead.
//   - Timeout "daraja_timeout": no answer in time; the push may have reached
//     the customer, so the payment stays PENDING for its callback.
//   - Unavailable "daraja_unreachable": no connection could be made, so the
//     push was never sent; the payment is FAILED.
//   - Unavailable "daraja_rate_limited": Daraja (or the gateway in front of
//     it) refused the push for the rate of requests (daraja.RateLimited:
//     HTTP 429, 500.003.02/03), so no prompt was sent; the payment is
//     FAILED with failure_reason "rate_limited".
//   - Unavailable "daraja_unavailable": Daraja refused the push while under
//     maintenance (00.002.1001); the payment is FAILED with failure_reason
//     "daraja_unavailable".
//   - Unavailable "database_unavailable": the database went away; before
//     the payment was stored nothing was done; after Daraja accepted the
//     push (payment_id in Details) the prompt was sent and the payment is
//     left to its callback.
func (g *Gateway) InitiateSTKPush(ctx context.Context, app *lipa.App, r STKPushRequest) (*STKPushResult, error) {
	p, err := g.newSTKPayment(app, r)
	if err != nil {
		return nil, err
	}
	var earlier *sqlstore.IdempotencyRecord
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		// One prompt per phone at a time: serialise pushes to one phone.
		if err := tx.Lock(ctx, "phone:"+p.PhoneNumber); err != nil {
			return err
		}
		if r.IdempotencyKey != "" {
			rec, reserved, err := tx.ReserveIdempotencyKey(ctx, app.ID, r.IdempotencyKey, requestHash(p), p.ID, p.CreatedAt)
			if err != nil {
				return err
			}
			if !reserved {
				earlier = rec
				return nil
			}
		}
		busy, err := tx.PendingPushSince(ctx, p.PhoneNumber, p.CreatedAt.Add(-g.cfg.PromptLifetime))
		if err == nil {
			e := lipa.Errorf(lipa.Conflict, "subscriber_busy",
				"the customer already has an M-Pesa prompt open; wait for it to finish, or up to %s, before pushing again", g.cfg.PromptLifetime)
			if busy.AppID == app.ID { // never reveal another app's payment
				e = e.With("pending_payment_id", string(busy.ID))
			}
			return e
		}
		if lipa.ErrorKind(err) != lipa.NotFound {
			return err
		}
		// Only a push about to be sent spends the phone's budget: not a
		// replay, not a refusal.
		if !g.allowPush(app.ID, p.PhoneNumber) {
			return lipa.Errorf(lipa.TooManyRequests, "phone_rate_limited",
				"too many STK pushes to this phone number; at most %d an hour are sent", g.cfg.PhonePushesPerHour)
		}
		return tx.InsertPayment(ctx, p)
	})
	if err != nil {
		return nil, err
	}
	if earlier != nil {
		return g.replay(ctx, app, r, requestHash(p), earlier)
	}
	// From here the payment exists: the app hanging up must not cut the push
	// in flight (its outcome would be unknown) nor the saving of Daraja's
	// answer. The Daraja client's own timeout bounds the call.
	ctx = context.WithoutCancel(ctx)
	log := g.log.With("app", app.Name, "payment_id", p.ID)
	log.InfoContext(ctx, "stk push initiated", "phone", lipa.MaskPhone(p.PhoneNumber), "amount", p.Amount.String(), "reference", p.Reference)

	whole, _ := p.Amount.WholeShillings()
	resp, err := g.daraja.STKPush(ctx, daraja.STKPushRequest{
		ShortCode:        g.cfg.ShortCode,
		Passkey:          g.cfg.Passkey,
		TransactionType:  g.cfg.TransactionType,
		Amount:           whole,
		PhoneNumber:      p.PhoneNumber,
		PartyB:           g.cfg.PartyB,
		CallBackURL:      g.cfg.CallbackURL,
		AccountReference: p.AccountReference,
		TransactionDesc:  cut(p.Description, MaxTransactionDescLength),
	})
	if err != nil {
		return nil, recorded(p.ID, g.pushFailed(ctx, p, err))
	}
	g.noteDaraja("")
	var toConfirm []int64
	err = g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		if err := tx.Lock(ctx, resp.CheckoutRequestID); err != nil {
			return err
		}
		cur, err := tx.PaymentForUpdate(ctx, p.ID)
		if err != nil {
			return err
		}
		cur.CheckoutRequestID = resp.CheckoutRequestID
		cur.MerchantRequestID = resp.MerchantRequestID
		cur.CustomerMessage = resp.CustomerMessage
		cur.UpdatedAt = g.clock()
		if err := tx.UpdatePayment(ctx, cur); err != nil {
			return err
		}
		*p = *cur
		// Daraja's own words, for the payment's timeline.
		if err := tx.InsertInbound(ctx, &sqlstore.Inbound{Kind: sqlstore.InboundSTKPushAnswer, Path: "/mpesa/stkpush/v1/processrequest",
			SourceAddr: "daraja", ReceivedAt: cur.UpdatedAt, Body: resp.Raw, CheckoutRequestID: resp.CheckoutRequestID,
			PaymentID: cur.ID, Outcome: sqlstore.OutcomeApplied}); err != nil {
			return err
		}
		// A callback can beat Daraja's answer here (docs/daraja.md "STK callback").
		early, err := tx.UnmatchedCallbacks(ctx, resp.CheckoutRequestID)
		if err != nil {
			return err
		}
		for _, m := range early {
			cb, err := daraja.ParseSTKCallback(m.Body)
			if err != nil {
				continue
			}
			confirm, err := g.applyCallbackTx(ctx, tx, p, cb, m.ID, false)
			if err != nil {
				return err
			}
			if err := g.resolveAutomaticallyTx(ctx, tx, m.ID, p.ID, "applied when the push's answer was saved"); err != nil {
				return err
			}
			if confirm {
				toConfirm = append(toConfirm, m.ID)
			}
		}
		return nil
	})
	for _, id := range toConfirm {
		g.confirmLater(id)
	}
	if err != nil {
		log.ErrorContext(ctx, "stk push accepted by Daraja but not saved", "checkout_request_id", resp.CheckoutRequestID, "err", err)
		kind, code := lipa.Internal, "internal_error"
		if lipa.ErrorKind(err) == lipa.Unavailable {
			kind, code = lipa.Unavailable, lipa.ErrorCode(err) // the database went away meanwhile
		}
		return nil, recorded(p.ID, lipa.Errorf(kind, code, "the STK push was sent but Lipa could not save Daraja's answer; do not push again: the payment will be settled by its callback").
			With("payment_id", string(p.ID)).Wrap(err))
	}
	log.InfoContext(ctx, "stk push accepted", "checkout_request_id", p.CheckoutRequestID, "merchant_request_id", p.MerchantRequestID)
	return &STKPushResult{Payment: p, DarajaResponse: resp.Raw}, nil
}

// newSTKPayment validates an STK push request into a new PENDING payment.
func (g *Gateway) newSTKPayment(app *lipa.App, r STKPushRequest) (*lipa.Payment, error) {
	phone, err := lipa.ParsePhone(r.PhoneNumber)
	if err != nil {
		return nil, err
	}
	amount, err := lipa.ParseSTKAmount(r.Amount)
	if err != nil {
		return nil, err
	}
	ref := strings.TrimSpace(r.Reference)
	switch {
	case ref == "":
		return nil, lipa.InvalidField("invalid_reference", "reference", "reference is required: your own reference for this payment, 1-%d characters", MaxReferenceLength)
	case utf8.RuneCountInString(ref) > MaxReferenceLength:
		return nil, lipa.InvalidField("invalid_reference", "reference", "reference is longer than %d characters", MaxReferenceLength)
	case hasControl(ref) || !hasVisible(ref):
		return nil, lipa.InvalidField("invalid_reference", "reference", "reference contains control or invisible formatting characters, or nothing visible")
	}
	acc := strings.TrimSpace(r.AccountReference)
	if acc != "" {
		if err := checkDarajaText("account_reference", "invalid_account_reference", acc, MaxAccountReferenceLength); err != nil {
			return nil, err
		}
	} else {
		if err := checkDarajaText("reference", "invalid_reference", ref, MaxAccountReferenceLength); err != nil {
			return nil, err.(*lipa.Error).With("hint", "send an account_reference of at most 12 ASCII letters, digits, spaces, '-', '_' or '.' for M-Pesa to show the customer")
		}
		acc = ref
	}
	desc := strings.TrimSpace(r.Description)
	if desc == "" {
		desc = DefaultDescription
	}
	if err := checkDarajaText("description", "invalid_description", desc, MaxDescriptionLength); err != nil {
		return nil, err
	}
	now := g.clock()
	return &lipa.Payment{
		ID: lipa.PaymentID(newID("pay_")), AppID: app.ID, AppName: app.Name,
		Type: lipa.TypeSTK, Status: lipa.StatusPending,
		PhoneNumber: string(phone), Amount: amount, Currency: "KES",
		Reference: ref, AccountReference: acc, Description: desc,
		ShortCode: g.cfg.ShortCode, TransactionType: g.cfg.TransactionType,
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// checkDarajaText checks a value that Lipa sends to Daraja (AccountReference,
// TransactionDesc): 1–max characters from the set Daraja accepts (ASCII
// letters, digits, space, '-', '_', '.'; integrators report others refused).
// Characters
// such as '&', '#', '@', emoji and line breaks are refused, never stripped.
func checkDarajaText(field, code, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return lipa.InvalidField(code, field, "%s %q is %d characters; M-Pesa allows at most %d", field, cut(v, 40), n, max)
	}
	for _, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '-' || r == '_' || r == '.'
		if !ok {
			return lipa.InvalidField(code, field, "%s contains %q (%U), which M-Pesa refuses; M-Pesa accepts only ASCII letters (A-Z, a-z), digits (0-9), spaces, '-', '_' and '.'", field, r, r)
		}
	}
	return nil
}

// hasControl reports whether s holds a control character or an invisible
// formatting one (zero-width spaces, bidirectional overrides: Unicode's Cc
// and Cf), which would make a reference look like another.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// hasVisible reports whether s has at least one letter, digit, mark,
// punctuation or symbol.
func hasVisible(s string) bool {
	for _, r := range s {
		if unicode.IsGraphic(r) && !unicode.IsSpace(r) {
			return true
		}
	}
	return false
}

// cut returns the first n runes of s, without trailing spaces.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return strings.TrimRight(string(r), " ")
}

// pushFailed records what a failed STK push call means for the payment and
// returns the error for the app. When the push provably did not go through
// (Daraja refused it, or it was never sent) the payment is settled FAILED
// through Payment.Settle; when the outcome is unknown (a timeout, an answer
// Lipa cannot read) it stays PENDING with a note, for its callback or the
// reconciler. The payment row is locked first, so a callback that found the
// payment meanwhile (adoptOrphanTx) is never overwritten. ctx must not be
// the app's request context (the app may have hung up).
func (g *Gateway) pushFailed(ctx context.Context, p *lipa.Payment, callErr error) error {
	log := g.log.With("app", p.AppName, "payment_id", p.ID)
	var (
		apiErr  *daraja.APIError
		authErr *daraja.AuthError
		badResp *daraja.BadResponseError
		final   = true // the push provably did not go through
		notSent = errors.Is(callErr, daraja.ErrNoToken)
	)
	o := lipa.Outcome{Status: lipa.StatusFailed, FailureReason: lipa.ReasonDarajaRejected, Source: lipa.ResolvedByPush}
	switch {
	case daraja.RateLimited(callErr):
		// Refused at Daraja's gate (spike arrest, quota, HTTP 429): no
		// prompt was sent, so the app may push again after a pause.
		o.FailureReason = lipa.ReasonRateLimited
		switch {
		case errors.As(callErr, &apiErr):
			o.ResultCode, o.ResultDesc = apiErr.ErrorCode, apiErr.ErrorMessage
		case errors.As(callErr, &badResp) && badResp.Fault != "":
			o.ResultCode, o.ResultDesc = badResp.Fault, fmt.Sprintf("Daraja answered HTTP %d (rate limited)", badResp.HTTPStatus)
		default:
			o.ResultDesc = "Daraja answered HTTP 429 (too many requests)"
		}
	case errors.As(callErr, &apiErr) && apiErr.Reason() == daraja.ReasonMaintenance:
		o.FailureReason = lipa.ReasonDarajaUnavailable
		o.ResultCode, o.ResultDesc = apiErr.ErrorCode, apiErr.ErrorMessage
	case errors.As(callErr, &apiErr):
		o.ResultCode, o.ResultDesc = apiErr.ErrorCode, apiErr.ErrorMessage
		if apiErr.Reason() == daraja.ReasonSubscriberBusy {
			o.FailureReason = lipa.ReasonSubscriberBusy
		}
		if apiErr.Class() == daraja.ClassConfiguration {
			g.noteDaraja(apiErr.Error())
			log.ErrorContext(ctx, "Daraja refused Lipa's configuration; check MPESA_CONSUMER_KEY, MPESA_CONSUMER_SECRET, MPESA_SHORTCODE, MPESA_PASSKEY and MPESA_CALLBACK_URL", "err", callErr)
		}
	case errors.As(callErr, &authErr):
		o.ResultDesc = authErr.Error()
		g.noteDaraja(authErr.Error())
		log.ErrorContext(ctx, "Daraja refused the consumer key and secret", "err", callErr)
	case errors.Is(callErr, daraja.ErrUnreachable) || notSent:
		o.FailureReason = lipa.ReasonDarajaUnreachable
		o.ResultDesc = "Daraja could not be reached; the STK push was not sent"
	case errors.Is(callErr, daraja.ErrTimeout):
		final = false
		o.ResultDesc = "Daraja did not answer in time; the STK push may have reached the customer"
	default:
		final = false
		o.ResultDesc = "Daraja's answer could not be read; the STK push may have reached the customer"
	}
	appErr := darajaError(callSTKPush, callErr)
	err := g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		cur, err := tx.PaymentForUpdate(ctx, p.ID)
		if err != nil {
			return err
		}
		if cur.Status != lipa.StatusPending || cur.CheckoutRequestID != "" {
			// A callback found this payment while Daraja's answer was lost
			// (adoptOrphanTx): what it says wins over our guess.
			*p = *cur
			return nil
		}
		if !final {
			cur.ResultDesc, cur.UpdatedAt = o.ResultDesc, g.clock()
			*p = *cur
			return tx.UpdatePayment(ctx, cur)
		}
		if cur.Settle(o, g.clock()) != lipa.DecisionApplied {
			*p = *cur
			return nil
		}
		*p = *cur
		if err := tx.UpdatePayment(ctx, cur); err != nil {
			return err
		}
		return g.emitTx(ctx, tx, cur, EventPaymentFailed)
	})
	if err != nil {
		log.ErrorContext(ctx, "record failed stk push", "err", err)
	}
	log.WarnContext(ctx, "stk push failed", "status", p.Status, "failure_reason", p.FailureReason, "err", callErr)
	return appErr.With("payment_id", string(p.ID))
}

// replay answers a request that repeats an Idempotency-Key: a different
// request under the same key is Unprocessable "idempotency_key_reused";
// the same request gets the first answer, waiting for it while the first
// request is still in flight (so two requests arriving at once send one
// prompt). If no answer was recorded (the first request's process died), it
// gets the payment as it stands now.
func (g *Gateway) replay(ctx context.Context, app *lipa.App, r STKPushRequest, hash string, rec *sqlstore.IdempotencyRecord) (*STKPushResult, error) {
	if rec.RequestHash != hash {
		return nil, lipa.Errorf(lipa.Unprocessable, "idempotency_key_reused",
			"Idempotency-Key %q was used for a different request; use a new key for a new payment", r.IdempotencyKey).
			With("payment_id", string(rec.PaymentID))
	}
	rec, err := g.awaitIdempotentAnswer(ctx, app.ID, r.IdempotencyKey, rec)
	if err != nil {
		return nil, err
	}
	g.log.InfoContext(ctx, "idempotent stk push replayed", "app", app.Name, "payment_id", rec.PaymentID)
	if rec.ResponseStatus != 0 {
		return &STKPushResult{Replay: &Replay{Status: rec.ResponseStatus, Body: rec.ResponseBody}}, nil
	}
	p, err := g.Payment(ctx, app, rec.PaymentID)
	if err != nil {
		return nil, err
	}
	return &STKPushResult{Payment: p}, nil
}

// awaitIdempotentAnswer waits, at most IdempotencyWait, for the request
// that reserved the app's key to record its answer, and returns the record
// as it then stands (ResponseStatus still 0 when no answer came: that
// request's process died, or is still waiting on Daraja).
func (g *Gateway) awaitIdempotentAnswer(ctx context.Context, app lipa.AppID, key string, rec *sqlstore.IdempotencyRecord) (*sqlstore.IdempotencyRecord, error) {
	deadline := g.now().Add(g.cfg.IdempotencyWait)
	for rec.ResponseStatus == 0 && g.now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		err := g.db.InTx(ctx, func(tx *sqlstore.Tx) (err error) {
			rec, err = tx.IdempotencyKey(ctx, app, key)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// SaveIdempotentResponse records the answer given to the request that
// reserved the app's Idempotency-Key for payment, for later repeats. It
// writes once: an answer already stored, or a key reserved for another
// payment, is left as it is.
func (g *Gateway) SaveIdempotentResponse(ctx context.Context, app *lipa.App, key string, payment lipa.PaymentID, status int, body []byte) error {
	ctx = context.WithoutCancel(ctx) // the answer is sent: keep it even if the app hung up
	return g.db.InTx(ctx, func(tx *sqlstore.Tx) error {
		return tx.SaveIdempotentResponse(ctx, app.ID, key, payment, status, body)
	})
}
