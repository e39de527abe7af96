package darajasim

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// eat is East Africa Time, the zone Daraja speaks. Kenya has no daylight
// saving, so a fixed zone is exact and needs no tzdata.
var eat = time.FixedZone("EAT", 3*60*60)

// timestampLayout is Daraja's yyyyMMddHHmmss (docs/daraja.md "M-Pesa Express").
const timestampLayout = "20060102150405"

const (
	alnumUpper = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	alnumMixed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// dayChars maps a day of the month to its receipt character: 1–9, then
	// A=10 … V=31 (docs/daraja.md "M-Pesa Express").
	dayChars = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
	// receiptSpace is the number of distinct 7-character random parts (36^7).
	receiptSpace = 78364164096
)

// receipts generates receipt suffixes as an affine permutation of a counter
// over [0, receiptSpace): they look random, and no suffix repeats within the
// first receiptSpace calls of the process.
var receipts struct {
	once     sync.Once
	mul, add uint64
	n        atomic.Uint64
}

// NewReceipt returns a new M-Pesa receipt number (MpesaReceiptNumber, C2B
// TransID) for a transaction completed at now, in the realistic format of
// docs/daraja.md "M-Pesa Express": ten uppercase alphanumerics, the first a
// year letter (A=2006, so U=2026, wrapping after Z), the second a month
// letter (A=January … L=December), the third the day of the month (1–9, then
// A=10 … V=31), all in East Africa Time, then seven pseudo-random characters
// from [0-9A-Z]. Receipts are unique within the process (for the first 36^7
// calls). Safe for concurrent use.
func NewReceipt(now time.Time) string {
	t := now.In(eat)
	var b [10]byte
	b[0] = 'A' + byte(((t.Year()-2006)%26+26)%26)
	b[1] = 'A' + byte(t.Month()-1)
	b[2] = dayChars[t.Day()]
	v := receiptSuffix()
	for i := 9; i >= 3; i-- {
		b[i] = alnumUpper[v%36]
		v /= 36
	}
	return string(b[:])
}

func receiptSuffix() uint64 {
	g := &receipts
	g.once.Do(func() {
		for {
			m := randUint64() % receiptSpace
			// A multiplier coprime with 36^7 makes the map a bijection; a large
			// one makes consecutive receipts look unrelated.
			if m%2 != 0 && m%3 != 0 && m > receiptSpace/4 {
				g.mul = m
				break
			}
		}
		g.add = randUint64() % receiptSpace
	})
	n := (g.n.Add(1) - 1) % receiptSpace
	hi, lo := bits.Mul64(n, g.mul)
	lo, carry := bits.Add64(lo, g.add, 0)
	return bits.Rem64(hi+carry, lo, receiptSpace)
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// idSeq is the trailing counter of hex-group IDs; it starts at a random
// seven-digit value so IDs from different runs rarely look alike.
var idSeq = func() *atomic.Uint64 {
	var n atomic.Uint64
	n.Store(1_000_000 + randUint64()%8_000_000)
	return &n
}()

// newHexID returns an ID in Daraja's current hex-group style, used for
// MerchantRequestID, OriginatorCoversationID and requestId (docs/daraja.md
// "M-Pesa Express"), e.g. "2654-4b64-97ff-b827b542881d3130". The trailing
// counter makes it unique within the process.
func newHexID() string {
	var b [12]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:4] + "-" + h[4:8] + "-" + h[8:12] + "-" + h[12:24] + strconv.FormatUint(idSeq.Add(1), 10)
}

// newToken returns a 28-character alphanumeric access token (docs/daraja.md
// "OAuth").
func newToken() string {
	out := make([]byte, 0, 28)
	var buf [32]byte
	for len(out) < 28 {
		rand.Read(buf[:])
		for _, c := range buf {
			// Reject the top bytes so every character is equally likely.
			if int(c) < 256-256%len(alnumMixed) && len(out) < 28 {
				out = append(out, alnumMixed[int(c)%len(alnumMixed)])
			}
		}
	}
	return string(out)
}

// checkoutRequestID returns a CheckoutRequestID in the current format
// (docs/daraja.md "M-Pesa Express"): "ws_CO_", the time as ddMMyyyyHHmmss in
// East Africa Time, a three-digit sequence (the milliseconds, advanced past
// any ID already in use), and the last nine digits of the MSISDN. taken
// reports whether an ID is already issued.
func checkoutRequestID(now time.Time, msisdn string, taken func(string) bool) string {
	t := now.In(eat)
	prefix := "ws_CO_" + t.Format("02012006150405")
	tail := msisdn
	if len(tail) > 9 {
		tail = tail[len(tail)-9:]
	}
	for n := t.Nanosecond() / int(time.Millisecond); ; n++ {
		seq := strconv.Itoa(n)
		if n < 1000 {
			seq = strconv.Itoa(1000 + n)[1:] // zero-padded to three digits
		}
		id := prefix + seq + tail
		if !taken(id) {
			return id
		}
	}
}

// newConversationID returns a ConversationID in Daraja's format
// "AG_yyyyMMdd_" + 20 hex digits, the date in East Africa Time
// (docs/daraja.md "Reversal"), e.g. "AG_20211114_201018edbbf9f1582eaa".
func newConversationID(now time.Time) string {
	var b [10]byte
	rand.Read(b[:])
	return "AG_" + now.In(eat).Format("20060102") + "_" + hex.EncodeToString(b[:])
}

// placeholderReceipt is the receipt-shaped TransactionID Daraja puts in a
// failed initiator result: the date letters of a receipt, then seven
// zeros ("SKE0000000" in the portal's R000002 sample).
func placeholderReceipt(now time.Time) string {
	return NewReceipt(now)[:3] + "0000000"
}
