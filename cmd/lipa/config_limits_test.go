package main

import (
	"strings"
	"testing"
)

// TestConfigRefusesSettingsThatSilentlyDisableAProtection: values that
// would parse but switch a protection off (or make it meaningless) stop
// start-up with one line naming the variable.
func TestConfigRefusesSettingsThatSilentlyDisableAProtection(t *testing.T) {
	base := map[string]string{"MPESA_ENVIRONMENT": "production", "MPESA_CONSUMER_KEY": "k", "MPESA_CONSUMER_SECRET": "s",
		"MPESA_SHORTCODE": "174379", "MPESA_PASSKEY": "p", "MPESA_CALLBACK_URL": "https://pay.example.test/api/mpesa/stk-callback/",
		"LIPA_CALLBACK_TOKEN": "abcdefghijklmnopqrstuvwxyz"}
	cases := []struct{ name, value string }{
		{"LIPA_CALLBACK_ALLOWED_IPS", ""},
		{"LIPA_CALLBACK_ALLOWED_IPS", "   "},
		{"LIPA_APP_RATE_LIMIT", "NaN"},
		{"LIPA_APP_RATE_LIMIT", "Inf"},
		{"LIPA_APP_RATE_LIMIT", "-1"},
		{"LIPA_WEBHOOK_BACKOFF", "0s"},
		{"LIPA_WEBHOOK_RETRY_SPAN", "0s"},
		{"MPESA_TIMEOUT", "0s"},
		{"LIPA_ADMIN_KEY", "short"},
		{"LIPA_C2B_MIN_AMOUNT", "100"}, // with LIPA_C2B_MAX_AMOUNT=10 below
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			env := map[string]string{c.name: c.value, "LIPA_C2B_MAX_AMOUNT": "10"}
			if c.name != "LIPA_C2B_MIN_AMOUNT" {
				delete(env, "LIPA_C2B_MAX_AMOUNT")
			}
			for k, v := range base {
				if _, ok := env[k]; !ok {
					env[k] = v
				}
			}
			cfg, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.name) {
				t.Errorf("got %v, want an error naming %s", err, c.name)
			}
		})
	}
}
