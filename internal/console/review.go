package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

// reviewPageSize is how many review items the queue shows per page.
const reviewPageSize = 25

// reviewReasons explains each review reason to the person who must act on
// it: what Lipa saw and what usually resolves it. A reason missing here is
// shown by its code.
var reviewReasons = map[gateway.ReviewReason]string{
	gateway.ReviewUnmatchedCallback: "An STK callback whose CheckoutRequestID no payment has. If Daraja's answer to a push was lost, " +
		"match the callback to that PENDING payment; otherwise dismiss it.",
	gateway.ReviewMalformedPayload: "A callback or C2B confirmation that is not JSON, not of Daraja's shape, or names no CheckoutRequestID or TransID. " +
		"Read the payload: if it is a real C2B payment, create the payment with the corrected values; otherwise dismiss it.",
	gateway.ReviewRepeatedKey: "A C2B confirmation that names one field twice, so it says two things at once. " +
		"Check the M-Pesa statement, then create the payment with the right values or dismiss it.",
	gateway.ReviewMissingFields: "A C2B confirmation without the payer's MSISDN or the BusinessShortCode. " +
		"Check the M-Pesa statement, then create the payment with the missing values or dismiss it.",
	gateway.ReviewInvalidAmount: "A C2B confirmation whose TransAmount is zero, negative or unreadable. " +
		"Find the amount on the M-Pesa statement and create the payment with it, or dismiss it.",
	gateway.ReviewInvalidReceipt: "A TransID or MpesaReceiptNumber that is not of M-Pesa's shape, or a success callback without one. " +
		"Settle the payment with the receipt from the statement, or dismiss the item.",
	gateway.ReviewDuplicateOtherAmount: "A C2B confirmation whose TransID is already the receipt of a payment with another amount. " +
		"Check the statement: the recorded payment stands; dismiss the item once you know which amount is true.",
	gateway.ReviewReceiptConflict: "A success callback whose receipt already belongs to another payment. This payment stays PENDING: " +
		"settle it as the statement says, or dismiss the item.",
	gateway.ReviewAmountMismatch: "A success callback whose amount is not the payment's, so it was not applied. " +
		"Settle the payment as the statement says, or dismiss the item.",
	gateway.ReviewPhoneMismatch: "A success callback from another phone than the payment's, so it was not applied. " +
		"Settle the payment as the statement says, or dismiss the item.",
	gateway.ReviewStatusConflict: "A callback that contradicts a payment already settled. Nothing was changed; " +
		"check the statement and dismiss the item.",
	gateway.ReviewQueryContradicts: "Daraja's STK push query and the callback disagree about the payment. " +
		"Check the statement and settle the payment, or dismiss the item if it is settled rightly.",
	gateway.ReviewOrphanPush: "A push whose answer from Daraja was lost stayed PENDING past LIPA_PENDING_EXPIRY; the customer may have paid. " +
		"Settle it from the statement: SUCCESS with the receipt, or FAILED.",
}

// reviewReasonText names a review reason in words.
func reviewReasonText(r gateway.ReviewReason) string { return strings.ReplaceAll(string(r), "_", " ") }

// reviewLine is one item of the queue with its stored payload (nil for an
// item about a payment only).
type reviewLine struct {
	gateway.ReviewItem
	Payload *gateway.StoredPayload
	Why     string
}

type reviewListPage struct {
	State, Reason string
	Reasons       []gateway.ReviewReason // the filter's choices
	Open          int                    // how many items are open, whatever the filters
	Items         []reviewLine
	NextURL       string
	FirstURL      string
	Error         string
}

// review serves GET /admin/review?state=&reason=&cursor=: the review
// queue, newest first, open items unless state says otherwise (resolved,
// all), each with its payload and why it needs a person. Refunds waiting
// for approval, when Lipa has them, belong on this page as a section of
// their own.
func (s *Server) review(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	v := r.URL.Query()
	p := reviewListPage{State: v.Get("state"), Reason: v.Get("reason")}
	for reason := range reviewReasons {
		p.Reasons = append(p.Reasons, reason)
	}
	slices.Sort(p.Reasons)
	f := gateway.ReviewFilter{State: gateway.ReviewOpen, Reason: gateway.ReviewReason(p.Reason), Limit: reviewPageSize + 1}
	status := http.StatusOK
	switch p.State {
	case "", "open":
		p.State = "open"
	case "resolved":
		f.State = gateway.ReviewResolved
	case "all":
		f.State = ""
	default:
		status, p.Error = http.StatusBadRequest, "Show open, resolved or all items."
	}
	if c := v.Get("cursor"); c != "" && p.Error == "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			status, p.Error = http.StatusBadRequest, "That page of the queue does not exist; start from the newest."
		}
		f.Before = n
	}
	var err error
	if p.Open, err = s.gw.OpenReviewCount(r.Context()); err != nil {
		return err
	}
	if p.Error == "" {
		items, err := s.gw.ReviewItems(r.Context(), f)
		if err != nil {
			return err
		}
		next := ""
		if len(items) > reviewPageSize {
			items = items[:reviewPageSize]
			next = strconv.FormatInt(items[reviewPageSize-1].ID, 10)
		}
		payloads, err := s.gw.ReviewPayloads(r.Context(), items)
		if err != nil {
			return err
		}
		for _, it := range items {
			p.Items = append(p.Items, reviewLine{ReviewItem: it, Payload: payloads[it.InboundID], Why: reviewReasons[it.Reason]})
		}
		base := url.Values{}
		if p.State != "open" {
			base.Set("state", p.State)
		}
		if p.Reason != "" {
			base.Set("reason", p.Reason)
		}
		if next != "" {
			n := url.Values{"cursor": {next}}
			for k := range base {
				n.Set(k, base.Get(k))
			}
			p.NextURL = "/admin/review?" + n.Encode()
		}
		if f.Before != 0 {
			p.FirstURL = "/admin/review"
			if len(base) > 0 {
				p.FirstURL += "?" + base.Encode()
			}
		}
	}
	s.render(w, r, op, status, "review", "Review queue", "review", p)
	return nil
}

// reviewItemPage is one review item with what an operator needs to decide
// on it and, for admins, the resolutions that fit it.
type reviewItemPage struct {
	*gateway.ReviewDetail
	Why string
	// The resolutions that fit the item (all false once it is resolved).
	CanMatch, CanSettle, CanCreate, CanDismiss bool
	Notice                                     string
	// A refused resolution: which form (match, settle, create-payment,
	// dismiss), why, and what was typed into it.
	Failed string
	Error  string
	Form   url.Values
	// TopError is a refusal of a resolution whose form the page does not
	// show (the item was resolved meanwhile, or it does not fit the item),
	// shown on top instead.
	TopError string
}

// reviewItemID reads the {id} of a review page; anything but a positive
// number is no item.
func reviewItemID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, lipa.Errorf(lipa.NotFound, "review_item_not_found", "there is no review item %q", r.PathValue("id"))
	}
	return id, nil
}

// reviewItemOf loads the page of item id.
func (s *Server) reviewItemOf(r *http.Request, id int64) (*reviewItemPage, error) {
	d, err := s.gw.ReviewItem(r.Context(), id)
	if err != nil {
		return nil, err
	}
	p := &reviewItemPage{ReviewDetail: d, Why: reviewReasons[d.Item.Reason], Form: url.Values{}}
	if d.Item.State == gateway.ReviewOpen {
		p.CanDismiss = true
		p.CanMatch = d.Payload != nil && d.Payload.Kind == gateway.KindSTKCallback && d.Payload.Outcome == "unmatched"
		p.CanSettle = d.Item.PaymentID != "" && d.Payment != nil && d.Payment.Status == lipa.StatusPending
		p.CanCreate = d.Payload != nil && d.Payload.Kind == gateway.KindC2BConfirmation
	}
	return p, nil
}

// reviewNotices are the messages a resolution's redirect may ask for.
var reviewNotices = map[string]string{
	"matched":         "The callback was applied to the payment; the item is resolved.",
	"settled":         "The payment is settled; the item is resolved.",
	"payment_created": "The payment was created in the C2B intake pool; the item is resolved.",
	"dismissed":       "The item is dismissed; nothing else changed.",
}

// reviewItem serves GET /admin/review/{id}: the item, its raw payload, the
// payment concerned, its history and, for admins, the resolution forms.
func (s *Server) reviewItem(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
	id, err := reviewItemID(r)
	if err != nil {
		return err
	}
	p, err := s.reviewItemOf(r, id)
	if err != nil {
		return err
	}
	p.Notice = reviewNotices[r.URL.Query().Get("notice")]
	s.render(w, r, op, http.StatusOK, "review_item", "Review item "+strconv.FormatInt(id, 10), "review", p)
	return nil
}

// resolveReview serves POST /admin/review/{id}/{action} for the actions
// match (payment_id), settle (status, receipt), create-payment (amount,
// account, phone) and dismiss, each with its reason: the gateway's
// resolutions, as the operator. A refused resolution (no reason, a wrong
// receipt, an item resolved meanwhile) shows the item again with why,
// and changes nothing.
func (s *Server) resolveReview(action string) handler {
	return func(w http.ResponseWriter, r *http.Request, op *gateway.OperatorSession) error {
		id, err := reviewItemID(r)
		if err != nil {
			return err
		}
		f, ctx, who := r.PostForm, r.Context(), actor(op)
		reason := f.Get("reason")
		var res *gateway.ReviewResult
		switch action {
		case "match":
			pid := strings.TrimSpace(f.Get("payment_id"))
			if pid == "" {
				err = lipa.InvalidField("missing_parameter", "payment_id", "give the id of the PENDING payment the callback belongs to")
				break
			}
			res, err = s.gw.ResolveMatch(ctx, who, id, lipa.PaymentID(pid), reason)
		case "settle":
			res, err = s.gw.ResolveSettle(ctx, who, id, gateway.Settlement{Status: lipa.Status(strings.ToUpper(strings.TrimSpace(f.Get("status")))),
				Receipt: strings.ToUpper(strings.TrimSpace(f.Get("receipt")))}, reason)
		case "create-payment":
			res, err = s.gw.ResolveCreatePayment(ctx, who, id, gateway.Correction{Amount: f.Get("amount"), Account: f.Get("account"), Phone: f.Get("phone")}, reason)
		default:
			res, err = s.gw.ResolveDismiss(ctx, who, id, reason)
		}
		if err != nil {
			k := lipa.ErrorKind(err)
			if k != lipa.Invalid && k != lipa.Conflict && (k != lipa.NotFound || lipa.ErrorCode(err) == "review_item_not_found") {
				return err
			}
			p, lerr := s.reviewItemOf(r, id)
			if lerr != nil {
				return lerr
			}
			p.Failed, p.Error, p.Form = action, errorMessage(err), f
			if shown := map[string]bool{"match": p.CanMatch, "settle": p.CanSettle, "create-payment": p.CanCreate, "dismiss": p.CanDismiss}; !shown[action] {
				p.TopError = p.Error
			}
			s.render(w, r, op, s.cfg.StatusOf(err), "review_item", "Review item "+strconv.FormatInt(id, 10), "review", p)
			return nil
		}
		s.log.Info("review item resolved from the console", "review_id", id, "resolution", res.Item.Resolution, "operator", op.Operator.Username,
			"payment_id", res.Item.ResultPaymentID)
		http.Redirect(w, r, "/admin/review/"+strconv.FormatInt(id, 10)+"?notice="+string(res.Item.Resolution), http.StatusSeeOther)
		return nil
	}
}
