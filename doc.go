// Package lipa holds Lipa's domain vocabulary: payments and their state
// machine, apps, amounts, phone numbers (MSISDNs) and the error type shared by
// every layer. It does no I/O and imports only the standard library.
//
// Lipa is a self-hosted M-Pesa payment gateway: several apps share one service
// that talks to Safaricom's Daraja API, records every payment, and lets each
// app verify a payment and claim it exactly once.
package lipa
