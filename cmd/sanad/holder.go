package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
		return f.send(cmd, loadConfig, "revoke", jwsauth.Action{Action: jwsauth.ActionRevoke, Reason: *reason, Audience: ra.AudienceRevoke}, "")
	}

	renew := &cobra.Command{Use: "renew", Short: "Renew the certificate on the new key of a CSR (no new code; the profile's approval rule applies)", Args: cobra.NoArgs}
	csrPath := renew.Flags().String("csr", "", "the new key's certificate request: PEM or DER file")
	out := renew.Flags().String("out", "", "write the new certificate here (PEM) once issued")
	_ = renew.MarkFlagRequired("csr")
	renew.RunE = func(cmd *cobra.Command, _ []string) error {
		der, err := readCSR(*csrPath)
		if err != nil {
			return err
		}
		return f.send(cmd, loadConfig, "renew", jwsauth.Action{Action: jwsauth.ActionRenew, CSR: base64.RawURLEncoding.EncodeToString(der), Audience: ra.AudienceRenew}, *out)
	}
	cmd.AddCommand(revoke, renew)
	return cmd
}

// send signs a, about the certificate of --cert, with its key, posts it to
// /api/v1/certificates/{serial}/<verb> and prints the answer; out, if set,
// receives the certificate the answer carries.
func (f *holderFlags) send(cmd *cobra.Command, loadConfig func() (config.Config, error), verb string, a jwsauth.Action, out string) error {
	if f.key == "" || f.cert == "" {
		return usagef("a holder command needs --key and --cert (or SANAD_HOLDER_KEY and SANAD_HOLDER_CERT)")
	}
	url := f.url
	if url == "" {
		m, err := readDevManifest()
		if err != nil {
			return usagef("a holder command needs --url (or SANAD_URL): %v", err)
		}
		url = m.BaseURL
	}
	cert, err := jwsauth.LoadCertificate(f.cert)
	if err != nil {
		return err
	}
	signer, closeKey, err := loadSigner(cmd.Context(), f.key, loadConfig)
	if err != nil {
		return err
	}
	defer closeKey()
	a.Serial = jwsauth.SerialHex(cert.SerialNumber)
	jws, err := jwsauth.Sign(a, cert, signer, time.Now())
	if err != nil {
		return err
	}
	raw, err := sendSigned(cmd.Context(), cmd.OutOrStdout(), http.MethodPost, strings.TrimRight(url, "/")+"/api/v1/certificates/"+a.Serial+"/"+verb, jws)
	if err != nil || out == "" {
		return err
	}
	var v struct{ State, Certificate string }
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the RA's answer: %w", err)
	}
	if v.Certificate == "" {
		return fmt.Errorf("the renewal is %s: no certificate to write to %s yet (GET /api/v1/enrollments/{id} once issued)", v.State, out)
	}
	return os.WriteFile(out, []byte(v.Certificate), 0o644)
}

// readCSR reads a certificate request file, PEM or DER.
func readCSR(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%s: a PEM %s, not a CERTIFICATE REQUEST", path, b.Type)
		}
		return b.Bytes, nil
	}
	return raw, nil
}
