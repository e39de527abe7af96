// Package webhook signs and verifies the events Lipa POSTs to an app's webhook
// URL. Lipa imports it to sign; apps written in Go import it to verify. It uses
// only the standard library.
//
// Every delivery carries the header
//
//	Lipa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC is keyed with the app's webhook secret (printed once by
// `lipa apps set-webhook`) and covers the bytes "<t>.<body>": the timestamp in
// decimal, a full stop, then the raw request body. The timestamp is the time of
// the attempt, so a retry or a redelivery is signed afresh. A header may carry
// several v1 entries (one per secret while a secret is being rotated); one
// matching entry is enough. Keys other than t and v1 are ignored, so new
// schemes can be added without breaking old receivers.
//
// Lipa delivers at least once: an event whose answer is not a 2xx within 10
// seconds is sent again, and an operator can redeliver it, so a receiver must
// store the IDs of the events it has handled and skip those it has seen. A
// receiver should answer quickly and do slow work afterwards:
//
//	// secret is the app's webhook signing secret.
//	var secret = []byte(os.Getenv("LIPA_WEBHOOK_SECRET"))
//
//	// saveEvent stores ev under its ID for a worker to handle later, and
//	// does nothing if that ID is already stored (for example INSERT ... ON
//	// CONFLICT (id) DO NOTHING). Yours to write.
//	var saveEvent func(ctx context.Context, ev webhook.Event) error
//
//	func handleLipa(w http.ResponseWriter, r *http.Request) {
//		body, err := webhook.VerifyRequest(r, secret, 0)
//		if errors.Is(err, webhook.ErrTooOld) {
//			// Signed by Lipa but more than 5 minutes away from our clock:
//			// a replay, or a clock that needs NTP.
//			http.Error(w, "stale signature", http.StatusBadRequest)
//			return
//		}
//		if err != nil {
//			http.Error(w, "invalid signature", http.StatusBadRequest)
//			return
//		}
//		var ev webhook.Event
//		if err := json.Unmarshal(body, &ev); err != nil {
//			http.Error(w, "invalid event", http.StatusBadRequest)
//			return
//		}
//		// Deduplicate: an ID already stored is a retry or a redelivery,
//		// acknowledged again but not handled twice.
//		if err := saveEvent(r.Context(), ev); err != nil {
//			// Not a 2xx: Lipa retries later.
//			http.Error(w, "try again", http.StatusServiceUnavailable)
//			return
//		}
//		w.WriteHeader(http.StatusNoContent)
//	}
//
// The worker then switches on ev.Type (TypePaymentSucceeded and the others)
// and decodes from ev.Payment only the fields it needs; the payment has the
// shape of GET /api/payments/{id}/, with amounts as JSON numbers of shillings
// (which may have cents, such as 100.5).
package webhook
