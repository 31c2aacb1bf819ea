package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/verify"
	"github.com/sanadpki/sanad/verify/endpoint"
)

// startVerify adds the verify role: POST /api/v1/verify, trusting the
// roots of this deployment's store, the national roots, and those of
// verify.roots_file, other PKIs' (verify.Config.ForeignRoots), with the
// store's issuing CAs as known intermediates.
func startVerify(ctx context.Context, s *service) error {
	c := s.cfg.Verify
	// A verification's fetches together get at least three fetches' time
	// (verify.Config.Timeout, 30 s by default), so that a longer
	// fetch_timeout is not cut short by the default.
	cfg := verify.Config{OCSPResponder: c.OCSPResponder, AIAPrefixes: c.AIAPrefixes,
		HTTPClient: &http.Client{Timeout: c.FetchTimeout}, RevocationCacheTTL: c.RevocationCacheTTL,
		Timeout: max(30*time.Second, 3*c.FetchTimeout)}
	if cfg.RevocationCacheTTL == 0 {
		cfg.RevocationCacheTTL = -1 // verify.Config's "no cache"
	}
	issuers, err := s.db.Issuers(ctx)
	if err != nil {
		return err
	}
	for _, is := range issuers {
		cert, err := x509.ParseCertificate(is.CertificateDER)
		if err != nil {
			return fmt.Errorf("issuer %s: %w", is.ID, err)
		}
		switch is.Role {
		case "root":
			cfg.Roots = append(cfg.Roots, cert)
		case "issuing":
			cfg.Intermediates = append(cfg.Intermediates, cert)
		}
	}
	if c.RootsFile != "" {
		roots, err := readCertificates(c.RootsFile)
		if err != nil {
			return fmt.Errorf("verify.roots_file: %w", err)
		}
		cfg.ForeignRoots = roots
	}
	v, err := verify.New(cfg)
	if err != nil {
		return fmt.Errorf("verify role: %w (the store has no root; set verify.roots_file)", err)
	}
	proxies, err := s.cfg.HTTP.Proxies()
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	s.routes = append(s.routes, endpoint.New(v, c.MaxContentBytes, c.MaxConcurrent, s.log).MaxHeld(c.MaxHeldBytes).TrustProxies(proxies).Register)
	return nil
}

// readCertificates reads the certificates of a PEM file (of at most
// maxChainFile bytes); any other PEM block is refused.
func readCertificates(path string) ([]*x509.Certificate, error) {
	raw, err := readBounded(path, maxChainFile)
	if err != nil {
		return nil, err
	}
	return pemCertificates(path, raw)
}

// pemCertificates parses the PEM certificates of raw, read from path.
func pemCertificates(path string, raw []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: a %q PEM block is not a certificate", path, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}

// errNotPassed makes sanad verify exit 1 when a signature does not pass,
// after the report is printed.
var errNotPassed = errors.New("the signature did not pass")

func newVerifyCmd() *cobra.Command {
	var content, ocspURL string
	var roots, foreignRoots, intermediates []string
	var noAIA, noCRL, asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Validate a CMS (DER, PEM, S/MIME) or JWS signature to the national roots and print the report",
		Long: `verify checks a signature the way a government application does: format,
signer certificate, digest and signature, chain to the trust anchors (fetching
missing intermediates from caIssuers), key usage, revocation at the claimed
signing time (OCSP, else CRL) and time; it prints an ETSI EN 319 102-1 report:
TOTAL_PASSED, TOTAL_FAILED or INDETERMINATE with a sub-indication.

Trust anchors are --roots (PEM files), else SANAD_VERIFY_ROOTS, else after
"sanad dev" the dev root of ./var/dev.json: the national roots, whose signers
commit to content (contentCommitment, as citizen-sign and business-seal do).
--foreign-roots adds other PKIs' roots, whose signers need digitalSignature or
contentCommitment. Exit code 0 only when every signature passed.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&content, "content", "", "the signed content, for a detached signature")
	cmd.Flags().StringSliceVar(&roots, "roots", nil, "PEM file(s) of trust anchors: the national roots")
	cmd.Flags().StringSliceVar(&foreignRoots, "foreign-roots", nil, "PEM file(s) of other PKIs' trust anchors")
	cmd.Flags().StringSliceVar(&intermediates, "intermediates", nil, "PEM file(s) of CA certificates to build chains with")
	cmd.Flags().StringVar(&ocspURL, "ocsp", "", "ask this OCSP responder instead of each certificate's AIA URL")
	cmd.Flags().BoolVar(&noAIA, "no-aia", false, "do not fetch missing intermediates from caIssuers URLs")
	cmd.Flags().BoolVar(&noCRL, "no-crl", false, "do not fall back to CRLs when OCSP gives no answer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// The CLI runs for the person who asked: any caIssuers URL is
		// fetched unless --no-aia.
		cfg := verify.Config{OCSPResponder: ocspURL, AnyAIA: !noAIA, NoCRL: noCRL}
		if len(roots) == 0 {
			if env := os.Getenv("SANAD_VERIFY_ROOTS"); env != "" {
				roots = []string{env}
			}
		}
		if len(roots) == 0 {
			m, err := readDevManifest()
			if err != nil && len(foreignRoots) == 0 {
				return usagef("no trust anchors: give --roots FILE (or SANAD_VERIFY_ROOTS); %v", err)
			}
			for _, is := range m.Issuers {
				switch is.Role {
				case "root":
					roots = append(roots, is.Certificate)
				case "issuing":
					intermediates = append(intermediates, is.Certificate)
				}
			}
		}
		for _, r := range roots {
			certs, err := readCertificates(r)
			if err != nil {
				return usagef("--roots: %v", err)
			}
			cfg.Roots = append(cfg.Roots, certs...)
		}
		for _, r := range foreignRoots {
			certs, err := readCertificates(r)
			if err != nil {
				return usagef("--foreign-roots: %v", err)
			}
			cfg.ForeignRoots = append(cfg.ForeignRoots, certs...)
		}
		for _, r := range intermediates {
			certs, err := readCertificates(r)
			if err != nil {
				return usagef("--intermediates: %v", err)
			}
			cfg.Intermediates = append(cfg.Intermediates, certs...)
		}
		sig, err := readBounded(args[0], verify.MaxSignatureSize)
		if err != nil {
			return err
		}
		var data []byte
		if content != "" {
			if data, err = readBounded(content, 1<<30); err != nil {
				return err
			}
		}
		v, err := verify.New(cfg)
		if err != nil {
			return err
		}
		res, err := v.Verify(cmd.Context(), sig, data)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			err = enc.Encode(res)
		} else {
			err = res.WriteText(out)
		}
		if err != nil {
			return err
		}
		if res.Indication != verify.TotalPassed {
			return errNotPassed
		}
		return nil
	}
	return cmd
}
