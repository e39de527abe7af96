package darajasim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultPullPageSize is how many transactions one Pull query answers at
// most when Config.PullPageSize is zero. Safaricom does not document its
// page size.
const DefaultPullPageSize = 100

// DefaultPromptTimeout is how long an unanswered prompt (PhonePending4999,
// PhonePendingEmpty) stays open when Config.PromptTimeout is zero; the
// sandbox's test number ends in 1037 after about 26 s (docs/daraja.md "STK
// callback").
const DefaultPromptTimeout = 30 * time.Second

// pullWindow is how far back Pull reaches: 48 hours.
const pullWindow = 48 * time.Hour

type pullRegisterRequest struct {
	ShortCode       value
	RequestType     value
	NominatedNumber value
	CallBackURL     value
}

type pullRegisterResponse struct {
	ResponseRefID       string
	ResponseStatus      string
	ShortCode           string
	ResponseDescription string
}

var nominatedRE = regexp.MustCompile(`^(254|0)[17][0-9]{8}$`)

// handlePullRegister is Register Pull (docs/daraja.md "Pull
// Transactions"): token (HTTP 401 "401.001"), JSON (400.002.05), ShortCode
// (5–7 digits, else HTTP 400 "400.001 Invalid ShortCode"), then RequestType
// ("Pull"), NominatedNumber (07…, 01…, 2547… or 2541…) and CallBackURL
// (absolute, no refused word), each 400.002.02 "Bad Request - Invalid
// <Field>". A first registration answers ResponseStatus "1000", a repeated
// one "1001" (already registered).
func (s *Server) handlePullRegister(w http.ResponseWriter, r *http.Request) *failure {
	var req pullRegisterRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if !req.ShortCode.set || req.ShortCode.bad || !validShortCode(req.ShortCode.text) {
		return &failure{status: http.StatusBadRequest, code: "400.001", message: "Invalid ShortCode"}
	}
	if f := firstInvalid(
		check{"RequestType", req.RequestType, oneOf("Pull")},
		check{"NominatedNumber", req.NominatedNumber, nominatedRE.MatchString},
		check{"CallBackURL", req.CallBackURL, validResultURL},
	); f != nil {
		return f
	}
	shortCode := req.ShortCode.text
	s.mu.Lock()
	again := s.pullRegistered[shortCode]
	s.pullRegistered[shortCode] = true
	s.mu.Unlock()
	resp := pullRegisterResponse{ResponseRefID: newHexID(), ResponseStatus: "1000", ShortCode: shortCode,
		ResponseDescription: "Shortcode Registered Successfully"}
	if again {
		resp.ResponseStatus, resp.ResponseDescription = "1001", "ShortCode already Registered"
	}
	s.log.Info("pull registration", "short_code", shortCode, "status", resp.ResponseStatus)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type pullQueryRequest struct {
	ShortCode   value
	StartDate   value
	EndDate     value
	OffSetValue value
}

// pullItem is one transaction of a Pull answer, with Daraja's lower-case
// keys.
type pullItem struct {
	TransactionID    string      `json:"transactionId"`
	TrxDate          string      `json:"trxDate"`
	MSISDN           json.Number `json:"msisdn"`
	Sender           string      `json:"sender"`
	TransactionType  string      `json:"transactiontype"`
	BillReference    string      `json:"billreference"`
	Amount           string      `json:"amount"`
	OrganizationName string      `json:"organizationname"`
}

type pullQueryResponse struct {
	ResponseRefID   string
	ResponseCode    string
	ResponseMessage string
	Response        [][]pullItem
}

// parsePullDate reads a StartDate or EndDate, Kenya time: "2006-01-02
// 15:04:05" or without seconds, the hour with one or two digits.
func parsePullDate(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), eat); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// handlePullQuery is Query Pull Transaction (docs/daraja.md "Pull
// Transactions"): token (HTTP 401 "401.001"), JSON (400.002.05), ShortCode
// (HTTP 400 "400.001 Invalid ShortCode"), StartDate, EndDate (Kenya time,
// "YYYY-MM-DD HH:MM[:SS]"; an end before the start is "Invalid EndDate")
// and OffSetValue (digits, default 0), each 400.002.02 "Bad Request -
// Invalid <Field>". It answers from the transaction log: the shortcode's
// payments (C2B, and STK unless Config.PullExcludesSTK) completed from
// StartDate to EndDate and within the last 48 hours, oldest first, skipping
// OffSetValue rows and returning at most Config.PullPageSize, nested as
// Daraja nests them ("Response": [[...]]). No rows, or a shortcode not
// registered for Pull, is ResponseCode "1001" with "Response": [[]].
func (s *Server) handlePullQuery(w http.ResponseWriter, r *http.Request) *failure {
	var req pullQueryRequest
	if f := decodeBody(w, r, &req); f != nil {
		return f
	}
	if !req.ShortCode.set || req.ShortCode.bad || !validShortCode(req.ShortCode.text) {
		return &failure{status: http.StatusBadRequest, code: "400.001", message: "Invalid ShortCode"}
	}
	start, ok := parsePullDate(req.StartDate.str())
	if !ok {
		return invalid("StartDate")
	}
	end, ok := parsePullDate(req.EndDate.str())
	if !ok || end.Before(start) {
		return invalid("EndDate")
	}
	offset := 0
	if req.OffSetValue.set {
		n, err := strconv.Atoi(req.OffSetValue.str())
		if err != nil || n < 0 {
			return invalid("OffSetValue")
		}
		offset = n
	}
	shortCode := req.ShortCode.text
	now := s.now()
	oldest := now.Add(-pullWindow)
	if start.Before(oldest) {
		start = oldest
	}
	// Dates are to the second: a transaction at 10:00:00.7 is in a window
	// ending 10:00:00.
	end = end.Truncate(time.Second).Add(time.Second)

	s.mu.Lock()
	registered := s.pullRegistered[shortCode]
	var rows []Transaction
	for _, t := range s.ledger {
		if !t.belongsTo(shortCode) || t.Kind == KindReversal || (t.Kind == KindSTK && s.pullExcludesSTK) {
			continue
		}
		if at := t.CompletedAt; !at.Before(start.Truncate(time.Second)) && at.Before(end) {
			rows = append(rows, *t)
		}
	}
	pageSize := s.pullPageSize
	s.mu.Unlock()

	resp := pullQueryResponse{ResponseRefID: newHexID(), Response: [][]pullItem{{}}}
	if registered && offset < len(rows) {
		rows = rows[offset:min(len(rows), offset+pageSize)]
		for _, t := range rows {
			resp.Response[0] = append(resp.Response[0], pullRow(t))
		}
	}
	if len(resp.Response[0]) == 0 {
		resp.ResponseCode, resp.ResponseMessage = "1001", "No records found or Organization Name not available"
	} else {
		resp.ResponseCode, resp.ResponseMessage = "1000", "Success"
	}
	s.log.Info("pull query", "short_code", shortCode, "offset", offset, "count", len(resp.Response[0]))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// pullRow writes t as Daraja's Pull item: the MSISDN as a JSON number
// without the country code, as in the portal's sample ("722000000"), the
// date as UTC RFC 3339, the amount as decimal text.
func pullRow(t Transaction) pullItem {
	typ := "c2b-pay-bill-debit"
	if t.CommandID == CommandBuyGoods {
		typ = "c2b-buy-goods-debit"
	}
	msisdn := strings.TrimPrefix(t.MSISDN, "254")
	return pullItem{
		TransactionID:    t.Receipt,
		TrxDate:          t.CompletedAt.UTC().Format(time.RFC3339),
		MSISDN:           json.Number(msisdn),
		Sender:           "John Doe",
		TransactionType:  typ,
		BillReference:    t.BillRef,
		Amount:           formatShillings(t.Amount),
		OrganizationName: "Lipa Daraja Simulator",
	}
}
