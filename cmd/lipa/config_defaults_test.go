package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/lipa-gateway/lipa/internal/gateway"
)

// TestConfigDefaultsAreTheDocumentedOnes: setting a variable to the default
// README's Configuration table gives it changes nothing, so the table and
// defaultConfig cannot disagree.
func TestConfigDefaultsAreTheDocumentedOnes(t *testing.T) {
	unset, err := loadConfig(lookupIn(map[string]string{}), "")
	if err != nil {
		t.Fatal(err)
	}
	_, defaults := configReference(t)
	if len(defaults) < 20 {
		t.Fatalf("README.md's configuration table: got %d plain defaults, want the table's (at least 20)", len(defaults))
	}
	for name, value := range defaults {
		set, err := loadConfig(lookupIn(map[string]string{name: value}), "")
		if err != nil {
			t.Errorf("%s=%q (README's default): got error %v", name, value, err)
			continue
		}
		if !reflect.DeepEqual(set, unset) {
			t.Errorf("%s=%q (README's default) is not the default: %s", name, value, configDiff(unset, set))
		}
	}
}

// TestConfigDefaultsAreTheGateways: the settings the gateway also has take
// its declared defaults, the ones gateway.New gives a zero Config.
func TestConfigDefaultsAreTheGateways(t *testing.T) {
	cfg, err := loadConfig(lookupIn(map[string]string{}), "")
	if err != nil {
		t.Fatal(err)
	}
	got, want := gatewayConfig(cfg, "", nil), gateway.DefaultConfig()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"TransactionType", got.TransactionType, want.TransactionType},
		{"PromptLifetime", got.PromptLifetime, want.PromptLifetime},
		{"ReconcileAfter", got.ReconcileAfter, want.ReconcileAfter},
		{"PendingExpiry", got.PendingExpiry, want.PendingExpiry},
		{"IdempotencyWait", got.IdempotencyWait, want.IdempotencyWait},
		{"PhonePushesPerHour", got.PhonePushesPerHour, want.PhonePushesPerHour},
		{"WebhookRetrySpan", got.WebhookRetrySpan, want.WebhookRetrySpan},
		{"WebhookBackoff", got.WebhookBackoff, want.WebhookBackoff},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %v from the command's defaults, want the gateway's %v", f.name, f.got, f.want)
		}
	}
}

// configDiff names the fields in which a and b differ, with both values.
func configDiff(a, b Config) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s: %v, not %v", va.Type().Field(i).Name, vb.Field(i).Interface(), va.Field(i).Interface()))
		}
	}
	return strings.Join(out, "; ")
}
