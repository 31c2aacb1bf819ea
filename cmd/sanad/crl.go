package main

import (
	"encoding/pem"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newCRLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crl",
		Short: "CRLs signed by offline ceremonies",
	}
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Store a CRL an offline ceremony made, for the status role to serve at /crl/<issuer>.crl",
		Long: `Stores the CRL in FILE (DER or PEM), made by a crl ceremony for an issuer
recorded in the store (such as the offline root), after checking that the
issuer's certificate signed it and that its number is above every stored
one of the issuer. The import is an audit event. The status role serves the
latest stored CRL of each issuer.`,
		Args: cobra.ExactArgs(1),
	}
	loadConfig := configFlag(imp)
	issuer := imp.Flags().String("issuer", "", "the issuer's id in the store (as in dev.json: root)")
	transcript := imp.Flags().String("transcript", "", "the ceremony's signed transcript, named in the audit event")
	imp.RunE = func(cmd *cobra.Command, args []string) error {
		if *issuer == "" {
			return usagef("--issuer is required")
		}
		raw, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		der := raw
		if block, _ := pem.Decode(raw); block != nil {
			if block.Type != "X509 CRL" {
				return fmt.Errorf("%s: a PEM %q, not an X509 CRL", args[0], block.Type)
			}
			der = block.Bytes
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		s, err := openKeylessService(ctx, cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
		if err != nil {
			return err
		}
		defer s.close()
		number, err := importCRL(ctx, s, *issuer, der, *transcript)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "stored CRL number %d of %s\n", number, *issuer)
		return nil
	}
	cmd.AddCommand(imp)
	return cmd
}
