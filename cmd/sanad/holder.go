package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// holderFlags are how a holder command finds the certificate, its key and
// the RA.
type holderFlags struct {
	key, cert, url string
}

func newHolderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "holder",
		Short: "A certificate holder's own requests, each a JWS signed with the certificate's key: revoke, renew",
		Long: `Holder commands sign a request about a certificate with that certificate's own
key and send it to the RA, as a citizen's or a business's application would.

The key is a PEM private key file (0600) given by --key or SANAD_HOLDER_KEY, or
"pkcs11:LABEL" for a key on the token of --config. The certificate is --cert or
SANAD_HOLDER_CERT, the RA's base URL --url or SANAD_URL (after "sanad dev", the
one in ./var/dev.json).`,
	}
	f := &holderFlags{}
	cmd.PersistentFlags().StringVar(&f.key, "key", os.Getenv("SANAD_HOLDER_KEY"), "the certificate's private key: PEM file, or pkcs11:LABEL")
	cmd.PersistentFlags().StringVar(&f.cert, "cert", os.Getenv("SANAD_HOLDER_CERT"), "the certificate (PEM)")
	cmd.PersistentFlags().StringVar(&f.url, "url", os.Getenv("SANAD_URL"), "RA base URL, e.g. https://ra.example.kz")
	loadConfig := configFlagIn(cmd.PersistentFlags())

	revoke := &cobra.Command{Use: "revoke", Short: "Revoke the certificate", Args: cobra.NoArgs}
	reason := revoke.Flags().String("reason", "", "keyCompromise, superseded or cessationOfOperation")
	_ = revoke.MarkFlagRequired("reason")
	revoke.RunE = func(cmd *cobra.Command, _ []string) error {
		_, _, err := f.send(cmd, loadConfig, "revoke", jwsauth.Action{Action: jwsauth.ActionRevoke, Reason: *reason, Audience: ra.AudienceRevoke})
		return err
	}

	renew := &cobra.Command{Use: "renew", Short: "Renew the certificate on the new key of a CSR (no new code; the profile's approval rule applies)", Args: cobra.NoArgs}
	csrPath := renew.Flags().String("csr", "", "the new key's certificate request: PEM or DER file")
	out := renew.Flags().String("out", "", "write the new certificate here (PEM) once issued")
	chainOut := renew.Flags().String("chain", "", "with --out: write the issuing CA's certificate here (PEM), for sanad sign --chain and the like")
	_ = renew.MarkFlagRequired("csr")
	renew.RunE = func(cmd *cobra.Command, _ []string) error {
		if *chainOut != "" && *out == "" {
			return usagef("--chain needs --out")
		}
		csr, err := readCSR(*csrPath)
		if err != nil {
			return err
		}
		a := jwsauth.Action{Action: jwsauth.ActionRenew, CSR: base64.RawURLEncoding.EncodeToString(csr.Raw), Audience: ra.AudienceRenew}
		old, raw, err := f.send(cmd, loadConfig, "renew", a)
		if p := (*problemAnswer)(nil); errors.As(err, &p) && p.Type == "urn:sanad:problem:already-renewed" {
			// Asked again, typically once officers approved: the renewal
			// already made is this one only if its certificate is for this
			// CSR's key (writeRenewed checks); otherwise the refusal
			// stands, with what the holder should know of the other.
			return renewedBefore(cmd, f.url, p, *out, *chainOut, old, csr)
		}
		if err != nil || *out == "" {
			return err
		}
		return writeRenewed(cmd.ErrOrStderr(), *out, *chainOut, raw, old, csr)
	}
	cmd.AddCommand(revoke, renew)
	return cmd
}

// send signs a, about the certificate of --cert, with its key, posts it to
// /api/v1/certificates/{serial}/<verb>, prints the answer and returns the
// certificate and the answer.
func (f *holderFlags) send(cmd *cobra.Command, loadConfig func() (config.Config, error), verb string, a jwsauth.Action) (*x509.Certificate, []byte, error) {
	if f.key == "" || f.cert == "" {
		return nil, nil, usagef("a holder command needs --key and --cert (or SANAD_HOLDER_KEY and SANAD_HOLDER_CERT)")
	}
	url := f.url
	if url == "" {
		m, err := readDevManifest()
		if err != nil {
			return nil, nil, usagef("a holder command needs --url (or SANAD_URL): %v", err)
		}
		url = m.BaseURL
		fmt.Fprintf(cmd.ErrOrStderr(), "sanad holder: the RA of %s, %s\n", m.path, url)
	}
	f.url = url
	cert, err := jwsauth.LoadCertificate(f.cert)
	if err != nil {
		return nil, nil, err
	}
	signer, closeKey, err := loadSigner(cmd.Context(), f.key, loadConfig)
	if err != nil {
		return nil, nil, err
	}
	defer closeKey()
	a.Serial = jwsauth.SerialHex(cert.SerialNumber)
	jws, err := jwsauth.Sign(a, cert, signer, time.Now())
	if err != nil {
		return nil, nil, err
	}
	raw, err := sendSigned(cmd.Context(), cmd.OutOrStdout(), http.MethodPost, strings.TrimRight(url, "/")+"/api/v1/certificates/"+a.Serial+"/"+verb, jws)
	return cert, raw, err
}

// renewedBefore answers an already-renewed refusal p of a renewal on
// csr's key: it gets and prints the renewal p names (its extension member
// enrollment) from the RA at url, and, given out, writes its certificate
// if it is for csr's key. Otherwise the refusal stands (exit 1): a renewal
// not yet issued, one not asked for, or, without out, none to write.
func renewedBefore(cmd *cobra.Command, url string, p *problemAnswer, out, chainOut string, old *x509.Certificate, csr *x509.CertificateRequest) error {
	var ext struct{ Enrollment string }
	if json.Unmarshal(p.raw, &ext) != nil || !ra.IsEnrollmentID(ext.Enrollment) {
		return p
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "sanad holder: %s; the renewal:\n", transcript.Printable(p.Detail))
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, strings.TrimRight(url, "/")+"/api/v1/enrollments/"+ext.Enrollment, nil)
	if err != nil {
		return err
	}
	raw, err := send(req, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	var v struct{ Certificate string }
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the RA's answer: %w", err)
	}
	if out == "" || v.Certificate == "" {
		if v.Certificate == "" {
			fmt.Fprintf(stderr, "sanad holder: it has no certificate yet; if you did not ask for it, revoke this certificate for keyCompromise\n")
		}
		return p
	}
	if err := writeRenewed(stderr, out, chainOut, raw, old, csr); err != nil {
		return fmt.Errorf("%w; if you did not ask for that renewal, revoke this certificate for keyCompromise", err)
	}
	return nil
}

// writeRenewed writes to path the certificate a renewal's answer carries,
// once checked to be what was asked for: old's subject and issuer, csr's
// key; and to chainPath, when given, the answer's chain, once checked to
// have signed it. A renewal that waits for officers has none yet: that is
// said, and is no error (the RA took the request).
func writeRenewed(stderr io.Writer, path, chainPath string, answer []byte, old *x509.Certificate, csr *x509.CertificateRequest) error {
	var v struct{ ID, State, Certificate, Chain string }
	if err := json.Unmarshal(answer, &v); err != nil {
		return fmt.Errorf("the RA's answer: %w", err)
	}
	if v.Certificate == "" {
		fmt.Fprintf(stderr, "sanad holder: renewal %s is %s: nothing written to %s; GET /api/v1/enrollments/%s gives the certificate once issued\n", v.ID, v.State, path, v.ID)
		return nil
	}
	c, block, err := onePEMCertificate(v.Certificate, "certificate")
	if err != nil {
		return err
	}
	key, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	switch {
	case !ok || !key.Equal(csr.PublicKey):
		return errors.New("the RA's answer: the certificate is not for the CSR's key; nothing written")
	case !bytes.Equal(c.RawSubject, old.RawSubject) || !bytes.Equal(c.RawIssuer, old.RawIssuer):
		return fmt.Errorf("the RA's answer: the certificate is for %q from %q, not %q from %q; nothing written", c.Subject, c.Issuer, old.Subject, old.Issuer)
	}
	var chain *pem.Block
	if chainPath != "" {
		issuer, b, err := onePEMCertificate(v.Chain, "chain")
		if err != nil {
			return err
		}
		if err := c.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("the RA's answer: the chain did not sign the certificate (%v); nothing written", err)
		}
		chain = b
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o644); err != nil {
		return err
	}
	if chain == nil {
		return nil
	}
	return os.WriteFile(chainPath, pem.EncodeToMemory(chain), 0o644)
}

// onePEMCertificate parses s, the answer's field named what, which must be
// exactly one PEM CERTIFICATE.
func onePEMCertificate(s, what string) (*x509.Certificate, *pem.Block, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("the RA's answer: %s is not one PEM CERTIFICATE", what)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the RA's answer: %s: %w", what, err)
	}
	return c, block, nil
}

// readCSR reads a certificate request file, PEM or DER, whose signature
// verifies.
func readCSR(path string) (*x509.CertificateRequest, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%s: a PEM %s, not a CERTIFICATE REQUEST", path, b.Type)
		}
		raw = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%s: the request's signature: %w", path, err)
	}
	return csr, nil
}
