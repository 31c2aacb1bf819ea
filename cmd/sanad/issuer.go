package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// issuerRoles are the roles of the certificates ceremonies make, as the
// store records them.
var issuerRoles = []string{"root", "issuing", "ocsp-signer", "audit"}

func newIssuerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Record what a ceremony made in the store (add), or list it",
		Long: `A ceremony writes certificates and a signed transcript; the roles read the
CA hierarchy from the store. "issuer add" records one certificate there, after
checking it against its ceremony's transcript (signed by the certificate's key,
or by its recorded issuer's when the key was certified from a key ceremony's
request), its place in the hierarchy and, for an online key, the key on the
token of --config. Each addition is an audit
event naming the operating-system account that made it.

A new OCSP signer is added beside the current one before that one runs out;
CA and status nodes take the valid signer whose certificate lasts longest
within ca.signer_check_interval (a minute), without a restart. Revoking a
signer (sanad officer revoke, by two CA officers) puts it out of service the
same way.

An issuing CA is rolled over the same way: certify the next one (its own key)
and its OCSP signer at ceremonies, add both, and from their next start CA nodes
issue from the valid issuing CA that lasts longest, while every earlier one
keeps revoking, publishing CRLs and answering OCSP for the certificates it
signed.`,
	}
	loadConfig := configFlagIn(cmd.PersistentFlags())

	add := &cobra.Command{
		Use:   "add ID",
		Short: "Record a ceremony's certificate as issuer ID (root, issuing, ocsp-signer or audit)",
		Args:  cobra.ExactArgs(1),
	}
	role := add.Flags().String("role", "", "role: "+strings.Join(issuerRoles, ", "))
	certPath := add.Flags().String("cert", "", "the certificate the ceremony wrote (PEM)")
	transcriptPath := add.Flags().String("transcript", "", "the ceremony's signed transcript")
	keyLabel := add.Flags().String("key-label", "", "the key's label on the token (for a root: default the ceremony's, which may be on an offline HSM)")
	add.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		switch {
		case !slices.Contains(issuerRoles, *role):
			return usagef("--role must be one of %s", strings.Join(issuerRoles, ", "))
		case *certPath == "" || *transcriptPath == "":
			return usagef("--cert and --transcript are required")
		case *role != "root" && *keyLabel == "":
			return usagef("--key-label is required for an online key (role %s)", *role)
		case !validIssuerID(id):
			return usagef("issuer id %q: use 1 to 32 lower-case letters, digits and '-' (it appears in URLs)", id)
		}
		cert, err := readCertificateFile(*certPath)
		if err != nil {
			return err
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		s, err := openService(ctx, cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
		if err != nil {
			return err
		}
		defer s.close()
		have, err := s.db.Issuers(ctx)
		if err != nil {
			return err
		}
		trSum, trLabel, err := checkCeremonyTranscript(*transcriptPath, cert, have)
		if err != nil {
			return err
		}
		if err := checkIssuerPlace(*role, cert, have, s.now()); err != nil {
			return err
		}
		// Nor a revoked certificate, nor one under a revoked issuing CA.
		why, err := issuerStatus(ctx, s.db, have, cert)
		if err != nil {
			return err
		}
		if why != "" {
			return fmt.Errorf("the certificate is %s", why)
		}
		// A root's key is normally on an offline HSM, not on this
		// configuration's token: it is recorded under the label its
		// ceremony gave it, and checked against the token only if it is
		// there (the quick start keeps its root online).
		offline := false
		if *role == "root" {
			switch {
			case *keyLabel == "" && trLabel == "":
				return usagef("the ceremony's transcript names no key for this root: give --key-label")
			case *keyLabel == "":
				*keyLabel = trLabel
			case *keyLabel != trLabel:
				return fmt.Errorf("--key-label %q: the ceremony's transcript names the key %q", *keyLabel, trLabel)
			}
			if _, err := s.token.FindKey(ctx, *keyLabel); errors.Is(err, hsm.ErrKeyNotFound) {
				offline = true
			}
		}
		if !offline {
			if err := checkIssuerKey(ctx, s.token, *keyLabel, cert); err != nil {
				return err
			}
		}
		// An OCSP signer or audit key the issuing CA certified is recorded
		// among that CA's certificates too (recordIssuer).
		var parent string
		if is, ok := certifiedBy(cert, have, "issuing"); ok && (*role == "ocsp-signer" || *role == "audit") {
			parent = is.ID
		}
		certSum := sha256.Sum256(cert.Raw)
		err = recordIssuer(ctx, s, store.Issuer{ID: id, Name: cert.Subject.CommonName, Role: *role,
			CertificateDER: cert.Raw, KeyLabel: *keyLabel, CreatedAt: s.now().UTC()}, cert, parent,
			audit.Event{Actor: operator(), Action: "issuer.add", Object: id,
				Details: map[string]any{"role": *role, "subject": cert.Subject.String(), "key_label": *keyLabel, "key_offline": offline,
					"certificate_sha256": hex.EncodeToString(certSum[:]), "not_after": cert.NotAfter,
					"transcript": *transcriptPath, "transcript_sha256": trSum}})
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("the store already has an issuer %q, or this certificate (sanad issuer list shows them): %w", id, err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "recorded %s %s (%s), valid until %s\n", *role, id, cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
		return nil
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the issuers recorded in the store",
		Args:  cobra.NoArgs,
	}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return withStore(cmd, loadConfig, func(ctx context.Context, s *service) error {
			issuers, err := s.db.Issuers(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tROLE\tSUBJECT\tNOT AFTER\tKEY LABEL\tSTATUS")
			for _, is := range issuers {
				notAfter, status := "?", "?"
				if c, err := x509.ParseCertificate(is.CertificateDER); err == nil {
					notAfter = c.NotAfter.UTC().Format(time.DateOnly)
					why, err := issuerStatus(ctx, s.db, issuers, c)
					switch {
					case err != nil:
						return err
					case why != "":
						status = why
					default:
						status = "good"
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", is.ID, is.Role, is.Name, notAfter, is.KeyLabel, status)
			}
			return w.Flush()
		})
	}
	cmd.AddCommand(add, list)
	return cmd
}

// recordIssuer stores a ceremony's certificate as an issuer, with its
// audit event, in one transaction. Given the issuing CA (parent) that
// certified it, an OCSP signer's or audit key's certificate is also
// recorded among that CA's certificates (profile = role), so that it gets
// OCSP answers and can be revoked onto the issuing CA's CRL like any
// certificate it signed (and a revoked OCSP signer is not chosen again:
// rankResponders). sanad dev records its own hierarchy without this.
func recordIssuer(ctx context.Context, s *service, is store.Issuer, cert *x509.Certificate, parent string, event audit.Event) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutIssuer(ctx, is); err != nil {
			return err
		}
		if parent != "" {
			if err := ca.RecordCertified(ctx, tx, parent, is.Role, cert, s.now().UTC()); err != nil {
				return err
			}
		}
		return s.audit.Append(tx, event)
	})
}

// validIssuerID: issuer ids name URLs (/crl/ID.crl, /ca/ID.crt).
func validIssuerID(id string) bool {
	if len(id) == 0 || len(id) > 32 || id[0] == '-' {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// checkCeremonyTranscript verifies the transcript's hash chain and
// signature, that the certificate's key signed it (a ceremony that makes a
// key signs its transcript with it) or else the key of the recorded issuer
// that certified it (a ceremony that certified a key made on another
// token, from its key ceremony's request), and that it records issuing
// this very certificate. It returns the transcript's SHA-256 and the label
// the ceremony gave the certificate's key ("" if it names none).
func checkCeremonyTranscript(path string, cert *x509.Certificate, have []store.Issuer) (sum, keyLabel string, err error) {
	res, sum, err := readSignedTranscript(path, cert, "the certificate's key")
	if errors.Is(err, transcript.ErrWrongSigner) {
		if is, ok := certifiedBy(cert, have, issuerRoles...); ok {
			parent, perr := x509.ParseCertificate(is.CertificateDER) // certifiedBy parsed it
			if perr != nil {
				return "", "", perr
			}
			res, sum, err = readSignedTranscript(path, parent, "the certificate's key, nor by its issuer "+is.ID+"'s")
		}
	}
	if err != nil {
		return "", "", err
	}
	want := sha256.Sum256(cert.Raw)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	issued := false
	for _, l := range res.Lines {
		var d struct {
			SHA256    string `json:"certificate_sha256"`
			Label     string `json:"label"`
			PublicKey string `json:"public_key_sha256"`
		}
		if json.Unmarshal(l.Data, &d) != nil {
			continue
		}
		switch l.Step {
		case "certificate-issue":
			issued = issued || d.SHA256 == hex.EncodeToString(want[:])
		case "key-generate", "key-use", "key-request":
			if d.PublicKey == hex.EncodeToString(spki[:]) {
				keyLabel = d.Label
			}
		}
	}
	if !issued {
		return "", "", fmt.Errorf("%s: the ceremony did not issue this certificate", path)
	}
	return sum, keyLabel, nil
}

// checkIssuerPlace checks the certificate fits its role in the hierarchy
// the store holds: a root is a self-signed CA; an issuing CA (the next one
// at a rollover) is a CA certified by a recorded root, with a key no other
// issuer has; an OCSP signer is certified by the
// issuing CA for OCSP signing; the audit key's certificate by the issuing
// CA or a root. Every one must be valid now.
func checkIssuerPlace(role string, cert *x509.Certificate, have []store.Issuer, now time.Time) error {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("the certificate is valid from %s to %s", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	signedByRole := func(roles ...string) error {
		if _, ok := certifiedBy(cert, have, roles...); !ok {
			return fmt.Errorf("no recorded %s certified it", strings.Join(roles, " or "))
		}
		return nil
	}
	switch role {
	case "root":
		if !cert.IsCA || cert.CheckSignatureFrom(cert) != nil {
			return errors.New("a root must be a self-signed CA certificate")
		}
		return nil
	case "issuing":
		// A rollover adds the next issuing CA beside the current one: it
		// has a key of its own, and the newest valid one issues.
		for _, is := range have {
			if c, err := x509.ParseCertificate(is.CertificateDER); err == nil && bytes.Equal(c.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
				return fmt.Errorf("the certificate's key is already %s %s's; a new issuing CA needs a new key", is.Role, is.ID)
			}
		}
		if !cert.IsCA {
			return errors.New("an issuing CA's certificate must be a CA certificate")
		}
		return signedByRole("root")
	case "ocsp-signer":
		if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return errors.New("an OCSP signer's certificate needs the OCSPSigning extended key usage")
		}
		return signedByRole("issuing")
	case "audit":
		return signedByRole("issuing", "root")
	}
	return fmt.Errorf("unknown role %q", role)
}

// certifiedBy is the recorded issuer, of one of roles, whose certificate
// signed cert.
func certifiedBy(cert *x509.Certificate, have []store.Issuer, roles ...string) (store.Issuer, bool) {
	for _, is := range have {
		if !slices.Contains(roles, is.Role) {
			continue
		}
		if parent, err := x509.ParseCertificate(is.CertificateDER); err == nil && cert.CheckSignatureFrom(parent) == nil {
			return is, true
		}
	}
	return store.Issuer{}, false
}

// issuerStatus says how cert, or the issuing CA that certified it, is
// revoked (issuerRevocation), or "" if neither is.
func issuerStatus(ctx context.Context, db *store.DB, have []store.Issuer, cert *x509.Certificate) (string, error) {
	why, err := issuerRevocation(ctx, db, have, cert)
	if err != nil || why != "" {
		return why, err
	}
	p, ok := certifiedBy(cert, have, "issuing")
	if !ok {
		return "", nil
	}
	pc, err := x509.ParseCertificate(p.CertificateDER)
	if err != nil {
		return "", err
	}
	if why, err = issuerRevocation(ctx, db, have, pc); err != nil || why == "" {
		return "", err
	}
	return "under issuing CA " + p.ID + ", which is " + why, nil
}

// issuerRevocation says how cert is revoked by a recorded issuer that
// certified it: in the store's records of that issuer's certificates
// ("revoked by issuing at …, keyCompromise", as soon as an officer
// revokes it), or on that issuer's latest stored CRL ("revoked by root's
// CRL number 2, superseded, at …"); "" if by neither.
func issuerRevocation(ctx context.Context, db *store.DB, have []store.Issuer, cert *x509.Certificate) (string, error) {
	for _, is := range have {
		parent, err := x509.ParseCertificate(is.CertificateDER)
		if err != nil || bytes.Equal(parent.Raw, cert.Raw) || cert.CheckSignatureFrom(parent) != nil {
			continue
		}
		switch c, err := db.Certificate(ctx, is.ID, cert.SerialNumber.Bytes()); {
		case err == nil && c.Status == store.StatusRevoked:
			return fmt.Sprintf("revoked by %s at %s, %s", is.ID, c.RevokedAt.UTC().Format(time.RFC3339), profile.ReasonName(c.Reason)), nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return "", err
		}
		latest, err := db.LatestCRL(ctx, is.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		rl, err := x509.ParseRevocationList(latest.DER)
		if err != nil {
			return "", fmt.Errorf("the stored CRL number %d of %s: %w", latest.Number, is.ID, err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return fmt.Sprintf("revoked by %s's CRL number %d, %s, at %s", is.ID, latest.Number, profile.ReasonName(e.ReasonCode),
					e.RevocationTime.UTC().Format(time.RFC3339)), nil
			}
		}
	}
	return "", nil
}

// checkIssuerKey checks the token holds the key the certificate certifies,
// protected as a CA key must be (hsm.FindProtectedKey).
func checkIssuerKey(ctx context.Context, tok *hsm.Token, label string, cert *x509.Certificate) error {
	key, _, err := tok.FindProtectedKey(ctx, label)
	if err != nil {
		return fmt.Errorf("key %q: %w", label, err)
	}
	have, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if !bytes.Equal(have, cert.RawSubjectPublicKeyInfo) {
		return fmt.Errorf("key %q on the token is not the certificate's key", label)
	}
	return nil
}
