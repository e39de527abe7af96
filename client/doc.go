// Package client is the Go client of Lipa's app API: STK pushes, payments,
// verification, claims and the events feed, plus verification of Lipa's
// signed webhooks. It speaks the contract of GET /api/openapi.json
// (docs/API.md explains it) and uses only the standard library and Lipa's
// public packages.
//
//	c, err := client.New("http://127.0.0.1:8000", os.Getenv("LIPA_API_KEY"))
//	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: "0708374149", Amount: client.Shillings(10), Reference: "ORDER001"})
//	// …the customer pays; a webhook or the events feed says so…
//	v, err := c.Verify(ctx, client.VerifyQuery{Reference: "ORDER001"})
//	if v.Paid {
//		_, err = c.Claim(ctx, client.ClaimRequest{Reference: "ORDER001", Amount: client.Shillings(10)})
//		if errors.Is(err, client.ErrAlreadyClaimed) {
//			// someone used this payment before: do not ship twice
//		}
//	}
//
// Every method takes a context and returns an error that is a *Error when
// Lipa answered with one: its Code is Lipa's stable error code (branch on
// it, or use errors.Is with ErrAlreadyClaimed and the other Err values), its
// StatusCode the HTTP status, its Details Lipa's structured context. Any
// other error means no answer came (a network failure, a cancelled
// context).
//
// Push sends an Idempotency-Key with every STK push, a random one unless
// the request names its own, and repeats a push whose answer was lost with
// the same key, so a network failure never prompts the customer twice.
// Requests that only read are repeated the same way; claims are never
// repeated (a repeat of a claim that succeeded would answer
// already_claimed). WithRetries sets how often.
//
// Payments and Events are iterators (iter.Seq2) that follow Lipa's cursors
// page by page. VerifyWebhook, ParseWebhook and WebhookHandler check a
// webhook delivery's Lipa-Signature with the github.com/lipa-gateway/lipa/webhook
// package and decode its event.
//
// A Client is safe for concurrent use.
package client
