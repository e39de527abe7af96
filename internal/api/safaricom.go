package api

import (
	"net/http"

	"github.com/lipa-gateway/lipa/internal/gateway"
)

// stkCallback serves POST /api/stk/callback/ (and the seed's
// /api/mpesa/stk-callback/): Safaricom's STK result
// (docs/daraja.md "STK callback"). Every readable callback is acknowledged with
// {"ResultCode": 0, "ResultDesc": "Accepted"} once stored, whatever was done
// with it; a body that is not a callback is stored and answered 400.
func (s *Server) stkCallback(w http.ResponseWriter, r *http.Request, in gateway.Inbound) error {
	if err := s.gw.ReceiveSTKCallback(r.Context(), in); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"ResultCode": 0, "ResultDesc": "Accepted"})
}

// c2bValidation serves POST /api/c2b/validation/ (and the alias under
// /api/mpesa/c2b/): answers {"ResultCode": "0", "ResultDesc": "Accepted"}
// or a rejection code (docs/daraja.md "C2B").
func (s *Server) c2bValidation(w http.ResponseWriter, r *http.Request, in gateway.Inbound) error {
	ans, err := s.gw.ReceiveC2BValidation(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ResultCode": ans.ResultCode, "ResultDesc": ans.ResultDesc})
}

// c2bConfirmation serves POST /api/c2b/confirmation/ (and the alias under
// /api/mpesa/c2b/): acknowledges with {"ResultCode": 0, "ResultDesc":
// "Success"} once the confirmation is stored (docs/daraja.md "C2B").
func (s *Server) c2bConfirmation(w http.ResponseWriter, r *http.Request, in gateway.Inbound) error {
	if err := s.gw.ReceiveC2BConfirmation(r.Context(), in); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"ResultCode": 0, "ResultDesc": "Success"})
}
