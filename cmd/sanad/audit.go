package main

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/internal/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with the tamper-evident audit log"}
	cmd.AddCommand(newAuditVerifyCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain and signed checkpoints; exit 1 with the first bad sequence number",
		Long: `Verify walks every audit event and checkpoint. Checkpoint signatures are checked
against the audit public key: from --public-key (an auditor's own copy, no HSM
needed) or else from the HSM token of the configuration.`,
		Args: cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	pubPath := cmd.Flags().String("public-key", "", "PEM file with the trusted audit public key (default: read it from the HSM)")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		db, err := openStore(ctx, cfg.Database)
		if err != nil {
			return err
		}
		defer db.Close()

		var pub crypto.PublicKey
		if *pubPath != "" {
			if pub, err = readPublicKeyPEM(*pubPath); err != nil {
				return err
			}
		} else {
			m, err := loadModule(cfg.HSM)
			if err != nil {
				return err
			}
			defer m.Close()
			tok, err := openToken(ctx, m, cfg.HSM)
			if err != nil {
				return err
			}
			defer tok.Close()
			key, err := tok.FindKey(ctx, cfg.Audit.KeyLabel)
			if err != nil {
				return fmt.Errorf("audit key %q: %w", cfg.Audit.KeyLabel, err)
			}
			pub = key.Public()
		}

		r, err := audit.Verify(ctx, db, cfg.Audit.Origin, []crypto.PublicKey{pub})
		if err != nil {
			return err
		}
		printAuditReport(cmd.OutOrStdout(), r, *asJSON)
		if !r.OK() {
			return fmt.Errorf("audit log verification failed at seq %d", r.FirstBad)
		}
		return nil
	}
	return cmd
}

func printAuditReport(w io.Writer, r audit.Report, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(w, string(out))
		return
	}
	if r.OK() {
		fmt.Fprintf(w, "audit log OK: %d events, %d checkpoints, signed through seq %d, %d events after the last checkpoint\n",
			r.Events, r.Checkpoints, r.AttestedSeq, r.Unattested)
		return
	}
	fmt.Fprintf(w, "audit log FAILED: first bad seq %d\n", r.FirstBad)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  seq %d: %s\n", p.Seq, p.Reason)
	}
}

func readPublicKeyPEM(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(path + ": no PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}
