package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/lipa-gateway/lipa/client"
	"github.com/lipa-gateway/lipa/webhook"
)

// The examples run against the `lipa serve` that TestMain starts in
// simulator mode: lipaURL is its address and apiKey an app's key. In your
// app they come from your configuration.

// An app's main path: push, wait for Safaricom's verdict, verify, claim.
func Example() {
	ctx := context.Background()
	c, err := client.New(lipaURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}

	// Ask the customer's phone for KES 10 for order ORDER001.
	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: "0708374149", Amount: client.Shillings(10), Reference: "ORDER001"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pushed:", push.Status)

	// Wait for the verdict (a webhook or the events feed would tell you).
	p, err := c.Payment(ctx, push.PaymentID)
	for err == nil && p.Status == client.StatusPending {
		time.Sleep(50 * time.Millisecond)
		p, err = c.Payment(ctx, push.PaymentID)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("payment:", p.Status)

	// Was the order paid? Then use the payment, exactly once.
	v, err := c.Verify(ctx, client.VerifyQuery{Reference: "ORDER001"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("paid:", v.Paid, v.Amount)
	claim, err := c.Claim(ctx, client.ClaimRequest{Reference: "ORDER001", Amount: client.Shillings(10)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("claimed:", claim.Amount)
	_, err = c.Claim(ctx, client.ClaimRequest{PaymentID: push.PaymentID})
	fmt.Println("claimed again:", errors.Is(err, client.ErrAlreadyClaimed))
	// Output:
	// pushed: PENDING
	// payment: SUCCESS
	// paid: true 10
	// claimed: 10
	// claimed again: true
}

// Lipa's errors carry a stable code, the HTTP status and the field at
// fault.
func ExampleError() {
	c, err := client.New(lipaURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Push(context.Background(), client.PushRequest{PhoneNumber: "12345", Amount: client.Shillings(10), Reference: "ORDER002"})
	var le *client.Error
	if errors.As(err, &le) {
		fmt.Println(le.StatusCode, le.Code, le.Field())
	}
	// Output:
	// 400 invalid_phone_number phone_number
}

// Payments follows the list's cursors: here three pushes under one
// reference, read two per page, newest first.
func ExampleClient_Payments() {
	ctx := context.Background()
	c, err := client.New(lipaURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	for i, phone := range []string{"0708374141", "0708374142", "0708374143"} {
		if _, err := c.Push(ctx, client.PushRequest{PhoneNumber: phone, Amount: client.Shillings(int64(10 * (i + 1))), Reference: "INVOICE-9"}); err != nil {
			log.Fatal(err)
		}
	}
	for p, err := range c.Payments(ctx, client.ListQuery{Reference: "INVOICE-9", Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.Reference, p.Amount)
	}
	// Output:
	// INVOICE-9 30
	// INVOICE-9 20
	// INVOICE-9 10
}

// Events reads the events feed; keep the last id handled and read on from
// it later to get only what is new.
func ExampleClient_Events() {
	ctx := context.Background()
	c, err := client.New(lipaURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	last := ""
	for ev, err := range c.Events(ctx, client.EventsQuery{}) {
		if err != nil {
			log.Fatal(err)
		}
		last = ev.ID // everything before now: already handled
	}

	push, err := c.Push(ctx, client.PushRequest{PhoneNumber: "0708374144", Amount: client.Shillings(50), Reference: "ORDER003"})
	if err != nil {
		log.Fatal(err)
	}
	for {
		p, err := c.Payment(ctx, push.PaymentID)
		if err != nil {
			log.Fatal(err)
		}
		if p.Status != client.StatusPending {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for ev, err := range c.Events(ctx, client.EventsQuery{After: last}) {
		if err != nil {
			log.Fatal(err)
		}
		if ev.Payment.ID == push.PaymentID {
			fmt.Println(ev.Type, ev.Payment.Reference, ev.Payment.Amount)
		}
		last = ev.ID
	}
	// Output:
	// payment.succeeded ORDER003 50
}

// WebhookHandler serves the app's webhook URL: it checks each delivery's
// Lipa-Signature and hands the event over.
func ExampleWebhookHandler() {
	// The secret `lipa apps set-webhook` printed.
	secret := []byte(os.Getenv("LIPA_WEBHOOK_SECRET"))
	http.Handle("/lipa-webhook", client.WebhookHandler(secret, func(ctx context.Context, ev *client.Event) error {
		// Lipa delivers at least once: skip event IDs already handled
		// (store them, for instance under a unique index), and return
		// quickly; an error makes Lipa deliver the event again later.
		switch ev.Type {
		case client.EventPaymentSucceeded:
			log.Printf("payment %s of %s paid", ev.Payment.ID, ev.Payment.Amount)
		case client.EventPaymentFailed:
			log.Printf("payment %s failed: %s", ev.Payment.ID, ev.Payment.FailureReason)
		}
		return nil
	}))
}

// ParseWebhook checks a delivery that arrived some other way (a queue, a
// serverless function) given its header, body and time of arrival.
func ExampleParseWebhook() {
	secret := []byte("whsec_example")
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_1","status":"SUCCESS","amount":100.5}}`)
	sent := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	header := webhook.Sign(secret, sent, body) // what Lipa put in Lipa-Signature

	ev, err := client.ParseWebhook(header, body, secret, sent.Add(2*time.Second))
	fmt.Println(ev.Type, ev.Payment.Amount, err)

	_, err = client.ParseWebhook(header, body, secret, sent.Add(time.Hour))
	fmt.Println("an hour later:", errors.Is(err, webhook.ErrTooOld))
	// Output:
	// payment.succeeded 100.5 <nil>
	// an hour later: true
}
