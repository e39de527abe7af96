// Command lipa runs Lipa, a self-hosted M-Pesa payment gateway, and its
// tools.
//
//	lipa serve                      run the HTTP service (SQLite and the built-in Daraja simulator by default)
//	lipa migrate                    apply database migrations
//	lipa apps create NAME [--json]  create an app and print its API key once
//	lipa apps list [--json]         list apps
//	lipa apps rotate-key NAME       give an app a new API key (printed once)
//	lipa apps set-webhook NAME URL  set an app's webhook URL; prints its signing secret once
//	lipa apps disable NAME          refuse an app's key
//	lipa apps enable NAME           accept it again
//	lipa simulator [--listen ADDR]  run the Daraja simulator on its own
//	lipa simulate c2b --amount 100 --account ORDER1 --phone 254708374149 [--url URL] [--no-confirmation]
//	                                send a simulated C2B payment to a running Lipa
//	lipa c2b register               register Lipa's C2B URLs with Daraja
//	lipa webhooks list --app NAME   an app's webhook deliveries and attempts
//	lipa webhooks redeliver …       send an event again, or every failed one
//	lipa callback-token             print a new random LIPA_CALLBACK_TOKEN
//	lipa doctor [--json] [--strict] check the configuration the way Safaricom and the internet will
//	lipa reconcile                  run one reconciliation pass
//	lipa callbacks unmatched        list stored STK callbacks that found no payment
//	lipa callbacks match ID PAYMENT apply one of them to a payment whose push answer was lost
//	lipa version                    print the version, VCS revision and Go version
//	lipa healthcheck [--url URL]    exit 0 only when the running Lipa's /readyz answers 200
//	lipa review list [--json]       the review queue: what Lipa could not settle by itself
//	lipa review show ID             one item: its stored payload, payment and history
//	lipa review match|settle|create-payment|dismiss ID … --reason TEXT
//	                                resolve an item (audited)
//	lipa audit list [--json]        operator actions, newest first
//	lipa operators create NAME --role admin|viewer [--password-stdin]
//	                                an operator account for the web console at /admin/
//	lipa operators list|disable|enable|set-password …
//	lipa payments list [--q VALUE] …   search payments as the console does
//	lipa payments show PAYMENT_ID   a payment with its timeline
//	lipa refunds list|show|approve|reject|settle …
//	                                refunds, and the approval of those that wait for one (audited)
//	lipa transactions status RECEIPT what M-Pesa says about a receipt (Transaction Status)
//	lipa pull register|run [--since 6h]
//	                                Pull Transactions: register the shortcode, run the backfill now
//	lipa bench [--json]             load Lipa and a minimal server side by side (BENCHMARKS.md)
//
// Configuration comes from environment variables and a .env file; see the
// README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

const usage = `usage: lipa <command> [arguments]

commands:
  serve                         run the HTTP service
  migrate                       apply database migrations
  apps create NAME [--json]     create an app and print its API key once
  apps list [--json]            list apps
  apps rotate-key NAME [--json] give an app a new API key (printed once)
  apps set-webhook NAME URL [--json]
                                set an app's webhook URL; prints its signing secret once
  apps disable NAME             refuse an app's API key
  apps enable NAME              accept it again
  simulator [--listen ADDR]     run the Daraja simulator on its own
  simulate c2b --amount N --account REF --phone MSISDN [--url URL] [--shortcode N] [--no-confirmation]
                                send a simulated C2B payment to a running Lipa
  c2b register                  register Lipa's C2B URLs with Daraja
  webhooks list --app NAME [--json]
                                an app's webhook deliveries and every attempt
  webhooks redeliver --app NAME (EVENT_ID | --failed)
                                send an event again, or every failed one
  callback-token                print a new random LIPA_CALLBACK_TOKEN
  doctor [--json] [--strict]    check the configuration, database, Daraja credentials,
                                callback URLs and clock; exit 1 when a check fails
  reconcile                     resolve PENDING payments now (STK push query, expiry)
  callbacks unmatched [--json]  list stored STK callbacks that found no payment
  callbacks match ID PAYMENT_ID apply an unmatched callback to a payment whose push answer was lost
  version                       print the version, VCS revision and Go version
  healthcheck [--url URL]       exit 0 only when the running Lipa's /readyz answers 200
  review list [--all] [--json]  the review queue: payloads and payments Lipa could not settle by itself
  review show ID [--json]       one item: its stored payload, its payment, its history
  review match ID PAYMENT_ID --reason TEXT
                                apply the item's unmatched callback to a payment whose push answer was lost
  review settle ID --status SUCCESS --receipt R --reason TEXT | --status FAILED --reason TEXT
                                settle the item's PENDING payment as found on the M-Pesa statement
  review create-payment ID [--amount A] [--account X] [--phone P] --reason TEXT
                                make the intake payment of a corrected C2B confirmation
  review dismiss ID --reason TEXT
                                close the item, changing nothing
  audit list [--actor A] [--action A] [--target T] [--since T] [--json]
                                operator actions, newest first
  operators create NAME --role admin|viewer [--password-stdin]
                                an account for the web console (/admin/); a password is made and printed unless given on stdin
  operators list|disable|enable|set-password …
                                the console's operator accounts
  payments list [--q VALUE] [--app NAME] [--status S] … [--json]
                                search payments as the console does (receipt, reference, phone, ids)
  payments show PAYMENT_ID [--json]
                                a payment with its timeline
  refunds list [--status S] [--json] | refunds show ID [--json]
                                refunds apps asked for
  refunds approve|reject ID --reason TEXT
                                decide on a refund waiting for approval (LIPA_REFUND_APPROVAL)
  refunds settle ID --status SUCCESS --receipt R --reason TEXT | --status FAILED --reason TEXT
                                settle a refund Lipa cannot settle itself, from the M-Pesa statement
  transactions status RECEIPT [--json]
                                what M-Pesa says about a receipt of the shortcode (Transaction Status)
  pull register [--nominated-number MSISDN]
                                register the shortcode for Pull Transactions
  pull run [--since 6h] [--json]
                                recover transactions whose confirmations or callbacks never came
  bench [--connections 32] [--duration 5s] [--database-url URL] [--json]
                                load Lipa and a minimal server side by side; see BENCHMARKS.md
`

// run executes one command and returns the process exit code: 0 on
// success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" { // needs no configuration, so that it works with a broken one
		if err := cmdVersion(args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "lipa: "+err.Error())
			return 2
		}
		return 0
	}
	// These two need no valid configuration: doctor reports every wrong
	// setting itself, and callback-token makes the token a configuration
	// may be refused for lacking.
	switch args[0] {
	case "doctor":
		return cmdDoctor(ctx, args[1:], lookup, ".env", stdout, stderr)
	case "callback-token":
		if err := cmdCallbackToken(args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "lipa: "+err.Error())
			return 2
		}
		return 0
	}
	cfg, err := loadConfig(lookup, ".env")
	if err != nil {
		fmt.Fprintln(stderr, "lipa: "+err.Error())
		return 1
	}
	var cmdErr error
	switch args[0] {
	case "serve":
		cmdErr = cmdServe(ctx, cfg, args[1:], stdout, stderr)
	case "migrate":
		cmdErr = cmdMigrate(ctx, cfg, stdout)
	case "apps":
		cmdErr = cmdApps(ctx, cfg, args[1:], stdout)
	case "simulator":
		cmdErr = cmdSimulator(ctx, cfg, args[1:], stderr)
	case "simulate":
		cmdErr = cmdSimulate(ctx, cfg, args[1:], stdout)
	case "c2b":
		cmdErr = cmdC2B(ctx, cfg, args[1:], stdout)
	case "reconcile":
		cmdErr = cmdReconcile(ctx, cfg, args[1:], stdout)
	case "webhooks":
		cmdErr = cmdWebhooks(ctx, cfg, args[1:], stdout)
	case "callbacks":
		cmdErr = cmdCallbacks(ctx, cfg, args[1:], stdout)
	case "healthcheck":
		cmdErr = cmdHealthcheck(ctx, cfg, args[1:], stdout, stderr)
	case "review":
		cmdErr = cmdReview(ctx, cfg, args[1:], stdout)
	case "audit":
		cmdErr = cmdAudit(ctx, cfg, args[1:], stdout)
	case "operators":
		cmdErr = cmdOperators(ctx, cfg, args[1:], os.Stdin, stdout)
	case "payments":
		cmdErr = cmdPayments(ctx, cfg, args[1:], stdout)
	case "refunds":
		cmdErr = cmdRefunds(ctx, cfg, args[1:], stdout)
	case "transactions":
		cmdErr = cmdTransactions(ctx, cfg, args[1:], stdout)
	case "pull":
		cmdErr = cmdPull(ctx, cfg, args[1:], stdout)
	case "bench":
		cmdErr = cmdBench(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "lipa: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if cmdErr != nil {
		fmt.Fprintln(stderr, "lipa: "+cmdErr.Error())
		if _, ok := cmdErr.(usageError); ok {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a command line that does not parse.
type usageError string

func (e usageError) Error() string { return string(e) }
