package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lipa-gateway/lipa"
	"github.com/lipa-gateway/lipa/internal/gateway"
)

const operatorsUsage = `usage: lipa operators create NAME --role admin|viewer [--password-stdin] [--json]
       lipa operators list [--json]
       lipa operators disable NAME | enable NAME
       lipa operators set-password NAME [--password-stdin]
Without --password-stdin a random password is made and printed once.`

// cmdOperators runs `lipa operators …`: the accounts of the people who sign
// in to the web console.
func cmdOperators(ctx context.Context, cfg Config, args []string, stdin io.Reader, stdout io.Writer) error {
	var (
		pos                    []string
		role                   string
		fromStdin, asJSON, bad bool
	)
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--password-stdin":
			fromStdin = true
		case a == "--json":
			asJSON = true
		case a == "--role" && i+1 < len(args):
			role = args[i+1]
			i++
		case strings.HasPrefix(a, "--role="):
			role = strings.TrimPrefix(a, "--role=")
		case strings.HasPrefix(a, "-"):
			bad = true
		default:
			pos = append(pos, a)
		}
	}
	if bad || len(pos) == 0 {
		return usageError(operatorsUsage)
	}
	sub, pos := pos[0], pos[1:]
	switch {
	case sub == "list" && len(pos) == 0 && role == "" && !fromStdin:
	case sub == "create" && len(pos) == 1:
		if role == "" {
			return usageError("operators create needs --role admin or --role viewer\n" + operatorsUsage)
		}
	case (sub == "disable" || sub == "enable") && len(pos) == 1 && role == "" && !fromStdin:
	case sub == "set-password" && len(pos) == 1 && role == "":
	default:
		return usageError(operatorsUsage)
	}
	var password lipa.Secret
	generated := false
	if sub == "create" || sub == "set-password" {
		if fromStdin {
			pw, err := readPassword(stdin)
			if err != nil {
				return err
			}
			password = pw
		} else {
			password, generated = gateway.NewPassword(), true
		}
	}
	// list only reads: it creates no database and no log file.
	gw, done, err := commandGateway(ctx, cfg, sub == "list")
	if err != nil {
		return err
	}
	defer done()
	who := cliActor()
	switch sub {
	case "create":
		o, err := gw.CreateOperator(ctx, who, pos[0], lipa.Role(role), password)
		if err != nil {
			return err
		}
		if asJSON {
			out := map[string]string{"username": o.Username, "role": string(o.Role)}
			if generated {
				out["password"] = password.Reveal()
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		fmt.Fprintf(stdout, "Created operator %q (%s).\n", o.Username, o.Role)
		if generated {
			fmt.Fprintf(stdout, "Their password, shown only this once:\n\n    %s\n\n", password.Reveal())
		}
		fmt.Fprintf(stdout, "They sign in at %s/admin/\n", consoleURL(cfg))
	case "set-password":
		if err := gw.SetOperatorPassword(ctx, who, pos[0], password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Password of %q changed; their sessions are ended.\n", pos[0])
		if generated {
			fmt.Fprintf(stdout, "The new password, shown only this once:\n\n    %s\n", password.Reveal())
		}
	case "disable", "enable":
		if err := gw.SetOperatorDisabled(ctx, who, pos[0], sub == "disable"); err != nil {
			return err
		}
		if sub == "disable" {
			fmt.Fprintf(stdout, "operator %q disabled; their sessions are ended\n", pos[0])
		} else {
			fmt.Fprintf(stdout, "operator %q enabled\n", pos[0])
		}
	case "list":
		ops, err := gw.Operators(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := []map[string]any{}
			for _, o := range ops {
				m := map[string]any{"username": o.Username, "role": o.Role, "disabled": o.Disabled,
					"created_at": o.CreatedAt.Format(time.RFC3339), "last_sign_in_at": nil}
				if !o.LastSignInAt.IsZero() {
					m["last_sign_in_at"] = o.LastSignInAt.Format(time.RFC3339)
				}
				out = append(out, m)
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tROLE\tSTATUS\tLAST SIGN-IN\tCREATED")
		for _, o := range ops {
			status, last := "enabled", "never"
			if o.Disabled {
				status = "disabled"
			}
			if !o.LastSignInAt.IsZero() {
				last = o.LastSignInAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Username, o.Role, status, last, o.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}

// readPassword reads a password from the first line of r (a pipe, or a
// terminal where it is typed), without its line ending.
func readPassword(r io.Reader) (lipa.Secret, error) {
	br := bufio.NewReader(io.LimitReader(r, gateway.MaxPasswordLength+2))
	line, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError("--password-stdin: stdin held no password (give it on the first line)")
	}
	return lipa.Secret(line), nil
}

// consoleURL is where this machine reaches the console, from the
// configuration.
func consoleURL(cfg Config) string {
	addr := cfg.ListenAddr
	if cfg.Console.Addr != "" && cfg.Console.Addr != "off" {
		addr = cfg.Console.Addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
