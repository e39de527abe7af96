package daraja

import "strings"

// refusedURLWords are the words Safaricom does not accept in a URL it is
// given to call (CallBackURL, ConfirmationURL, ValidationURL, ResultURL), in
// any case: docs/daraja.md "Callback URL rules", from the portal's register URL and C2B
// pages and the Daraja FAQ ("M-PESA, M-Pesa, mpesa, Safaricom, exe, exec,
// cmd, SQL, query"); safaricom/LNMOnlineAndroidSample#8 shows the refusal ("400.003.02
// Bad Request - Invalid ValidationURL - URL has the word MPESA"), and
// integrators report STK callback URLs with such words refused or never
// called. A word that contains another comes first ("exec" before "exe"),
// so the longer one is named.
var refusedURLWords = []string{"m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query"}

// RefusedURLWord returns the first word of Safaricom's list (see
// docs/daraja.md, "Callback URL rules") that s contains in any case, in
// lower case as listed ("mpesa", "m-pesa", "safaricom", "exec", "exe",
// "cmd", "sql", "query"), or "" when s contains none. s is a whole URL or a
// part of one (a host, a path, a token); every part counts.
func RefusedURLWord(s string) string {
	lower := strings.ToLower(s)
	for _, w := range refusedURLWords {
		if strings.Contains(lower, w) {
			return w
		}
	}
	return ""
}
