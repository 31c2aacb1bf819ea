// Command sanad is the one binary of the Sanad national PKI: the quick start
// (dev), the server roles (serve), database migrations, audit verification,
// and, as later issues land, ceremonies, officer actions, verification and
// benchmarks.
//
// This is the one place that wires packages together; no package imports it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes (DESIGN.md §4).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// gcPercent is sanad's default GOGC. Issuance allocates heavily (zlint
// builds a result per lint per certificate) over a small live heap, so the
// default 100 spends a large share of the CPU collecting: `sanad bench
// issue` ran 10–30 % faster at 400 than at 100 in alternating runs on the
// 2-core development machine.
// The heap then peaks near five times the live set, tens of megabytes. The
// GOGC environment variable still overrides it.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	tuneCMalloc()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks a mistake in how sanad was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes one sanad command and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "sanad:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "sanad",
		Short:         "Sanad: a national PKI — CA, RA, OCSP/CRL status, key ceremonies, signature verification",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newVersionCmd(),
		newMigrateCmd(),
		newDevCmd(),
		newServeCmd(),
		newAuditCmd(),
		newCeremonyCmd(),
		newBenchCmd(),
		newOfficerCmd(),
		newHolderCmd(),
		newCRLCmd(),
		newIssuerCmd(),
		newSignCmd(),
		newVerifyCmd(),
		newRegistryCmd(),
	)
	usageArgs(root)
	return root
}

// usageArgs makes a wrong number of arguments a usage error (exit code 2)
// in every command, as a wrong flag is.
func usageArgs(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}
