package webhook_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/lipa-gateway/lipa/webhook"
)

func Example() {
	secret := []byte("whsec_example")
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","created_at":"2025-01-02T03:04:05Z","payment":{"id":"pay_1"}}`)
	sent := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	// Lipa signs the body it is about to POST.
	header := webhook.Sign(secret, sent, body)

	// The app verifies it on arrival, 30 seconds later.
	err := webhook.Verify(header, body, secret, 0, sent.Add(30*time.Second))
	fmt.Println("fresh:", err)

	// The same delivery replayed an hour later is refused.
	err = webhook.Verify(header, body, secret, 0, sent.Add(time.Hour))
	fmt.Println("replayed:", errors.Is(err, webhook.ErrTooOld))

	// A modified body is refused.
	err = webhook.Verify(header, []byte(`{"id":"evt_2"}`), secret, 0, sent.Add(30*time.Second))
	fmt.Println("tampered:", errors.Is(err, webhook.ErrNoMatch))
	// Output:
	// fresh: <nil>
	// replayed: true
	// tampered: true
}
