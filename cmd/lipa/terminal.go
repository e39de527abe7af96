package main

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// terminalSafe returns s for a table printed to a terminal: unchanged when
// it is valid UTF-8 made only of printable characters (letters, marks,
// numbers, punctuation, symbols and the ASCII space), else quoted with Go's
// escapes (strconv.Quote: "ws_CO_\x1b[2J"). Text from outside Lipa (IDs and
// descriptions Safaricom sent, a webhook receiver's error) then cannot move
// the cursor, clear the screen, retitle the window or shift the columns.
func terminalSafe(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
