package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca/ceremony"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
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
issuer's certificate signed it, that its number is above every stored one of
the issuer and its date after the latest one's and not in the future, that
the ceremony's transcript (--transcript) records it, and that it keeps every
entry of the previous CRL until one issued after the certificate expired has
listed it (RFC 5280 §3.3). The import is an audit event. The status role serves the
latest stored CRL of each issuer.`,
		Args: cobra.ExactArgs(1),
	}
	loadConfig := configFlag(imp)
	issuer := imp.Flags().String("issuer", "", "the issuer's id in the store (as in dev.json: root)")
	transcriptPath := imp.Flags().String("transcript", "", "the ceremony's signed transcript: checked to be signed by the issuer's key and to record this CRL, and named in the audit event")
	imp.RunE = func(cmd *cobra.Command, args []string) error {
		if *issuer == "" || *transcriptPath == "" {
			return usagef("--issuer and --transcript are required")
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
		number, err := importCRL(ctx, s, *issuer, der, *transcriptPath, operator())
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "stored CRL number %d of %s\n", number, *issuer)
		return nil
	}
	cmd.AddCommand(imp)
	return cmd
}

// importCRL stores a CRL an offline ceremony signed for issuerID, as actor
// did: its signature by the issuer's certificate is checked, its number
// must be above every stored one's, the ceremony's transcript must be
// signed by the issuer's key and record this very CRL, and it must keep
// the previous CRL's entries (keepsEntries).
func importCRL(ctx context.Context, s *service, issuerID string, der []byte, transcriptPath, actor string) (int64, error) {
	is, err := s.db.Issuer(ctx, issuerID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("issuer %q is not recorded: record its certificate first (sanad issuer add)", issuerID)
	}
	if err != nil {
		return 0, err
	}
	cert, err := x509.ParseCertificate(is.CertificateDER)
	if err != nil {
		return 0, fmt.Errorf("issuer %s: %w", issuerID, err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return 0, fmt.Errorf("CRL of %s: %w", issuerID, err)
	}
	if err := rl.CheckSignatureFrom(cert); err != nil {
		return 0, fmt.Errorf("CRL of %s: not signed by its certificate: %w", issuerID, err)
	}
	if rl.Number == nil || !rl.Number.IsInt64() {
		return 0, fmt.Errorf("CRL of %s: no usable CRL number", issuerID)
	}
	trSum, carried, err := checkCRLTranscript(transcriptPath, cert, der)
	if err != nil {
		return 0, err
	}
	// The CRL whose entries the ceremony carried (crl.previous) is the
	// latest stored: one named by mistake would have left out what the
	// CRLs since revoked.
	if carried != "" {
		latest, err := s.db.LatestCRL(ctx, issuerID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return 0, fmt.Errorf("CRL number %d of %s carries the entries of a CRL the store does not have (SHA-256 %s): import that one first", rl.Number, issuerID, carried)
		case err != nil:
			return 0, err
		case hexSHA256(latest.DER) != carried:
			return 0, fmt.Errorf("CRL number %d of %s carries the entries of another CRL than number %d, the latest stored (its ceremony's previous CRL has SHA-256 %s)", rl.Number, issuerID, latest.Number, carried)
		}
	}
	if err := keepsEntries(ctx, s.db, issuerID, cert, rl, s.now()); err != nil {
		return 0, err
	}
	return rl.Number.Int64(), s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutCRL(ctx, store.CRL{IssuerID: issuerID, Number: rl.Number.Int64(), DER: der,
			ThisUpdate: rl.ThisUpdate, NextUpdate: rl.NextUpdate, CreatedAt: s.now()}); err != nil {
			return err
		}
		return s.audit.Append(tx, audit.Event{Actor: actor, Action: "crl.import", Object: issuerID,
			Details: map[string]any{"crl_number": rl.Number.Int64(), "crl_sha256": hexSHA256(der), "next_update": rl.NextUpdate,
				"transcript": transcriptPath, "transcript_sha256": trSum}})
	})
}

// checkCRLTranscript verifies a CRL ceremony's transcript: its hash chain,
// its signature by the issuer's key, and that it records issuing der. It
// returns the transcript's SHA-256, and that of the previous CRL whose
// entries the CRL carries ("" for a first CRL, or one a ceremony made
// before the ceremonies recorded it).
func checkCRLTranscript(path string, issuer *x509.Certificate, der []byte) (sum, previous string, err error) {
	res, sum, err := readSignedTranscript(path, issuer, "the issuer's key")
	if err != nil {
		return "", "", err
	}
	for _, l := range res.Lines {
		var d struct {
			SHA256   string `json:"crl_sha256"`
			Previous string `json:"previous_crl_sha256"`
		}
		if l.Step == "crl-issue" && json.Unmarshal(l.Data, &d) == nil && d.SHA256 == hexSHA256(der) {
			return sum, d.Previous, nil
		}
	}
	return "", "", fmt.Errorf("%s: the ceremony did not issue this CRL", path)
}

// readSignedTranscript verifies the ceremony transcript at path (its hash
// chain and signature) and that the key of cert (named whose for errors)
// signed it; it returns the transcript and its SHA-256.
func readSignedTranscript(path string, cert *x509.Certificate, whose string) (transcript.Result, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return transcript.Result{}, "", err
	}
	res, err := transcript.Verify(bytes.NewReader(raw))
	if err != nil {
		return transcript.Result{}, "", fmt.Errorf("%s: %w", path, err)
	}
	if err := res.SignedBy(cert.PublicKey); err != nil {
		return transcript.Result{}, "", fmt.Errorf("%s: not signed by %s: %w", path, whose, err)
	}
	return res, hexSHA256(raw), nil
}

// keepsEntries refuses a CRL of issuerID dated before the latest stored
// one or in the future, or that leaves out an entry of the latest stored
// one before that entry has been on a CRL issued after its certificate
// expired (RFC 5280 §3.3). Expiry is known for the issuers it certified
// (what an offline root's CRL lists); an entry of unknown expiry stays.
func keepsEntries(ctx context.Context, db *store.DB, issuerID string, issuer *x509.Certificate, rl *x509.RevocationList, now time.Time) error {
	prev, err := db.LatestCRL(ctx, issuerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := x509.ParseRevocationList(prev.DER)
	if err != nil {
		return fmt.Errorf("the stored CRL number %d of %s: %w", prev.Number, issuerID, err)
	}
	// A CRL's dates are the script's to set: one dated after its
	// predecessor, and not in the future, is the order of issue.
	if rl.ThisUpdate.Before(old.ThisUpdate) || rl.ThisUpdate.After(now.Add(crlClockSkew)) {
		return fmt.Errorf("CRL number %d of %s: thisUpdate %s is before number %d's (%s) or in the future", rl.Number, issuerID,
			rl.ThisUpdate.UTC().Format(time.RFC3339), prev.Number, old.ThisUpdate.UTC().Format(time.RFC3339))
	}
	kept := map[string]x509.RevocationListEntry{}
	for _, e := range rl.RevokedCertificateEntries {
		kept[e.SerialNumber.String()] = e
	}
	notAfter, err := knownExpiries(ctx, db, issuerID, issuer)
	if err != nil {
		return err
	}
	var dropped, changed []string
	for _, e := range old.RevokedCertificateEntries {
		serial := e.SerialNumber.String()
		if k, ok := kept[serial]; ok {
			// Kept as it was, or restated as a ceremony may
			// (ceremony.MayRestate): never dated later.
			if k.RevocationTime.After(e.RevocationTime) || (k.ReasonCode != e.ReasonCode && !ceremony.MayRestate(e.ReasonCode, k.ReasonCode)) {
				changed = append(changed, fmt.Sprintf("%X", e.SerialNumber.Bytes()))
			}
			continue
		}
		// The entry was on a CRL issued after its certificate expired
		// (the previous one): it may go now, not before.
		if na, ok := notAfter[serial]; ok && na.Before(old.ThisUpdate) {
			continue
		}
		dropped = append(dropped, fmt.Sprintf("%X", e.SerialNumber.Bytes()))
	}
	if len(dropped) > 0 {
		return fmt.Errorf("CRL number %d of %s leaves out %s, listed by number %d: an entry stays until it has been on a CRL issued after its certificate expired (RFC 5280 §3.3), which the store does not show of these",
			rl.Number, issuerID, strings.Join(dropped, ", "), prev.Number)
	}
	if len(changed) > 0 {
		return fmt.Errorf("CRL number %d of %s changes the entries of %s on number %d: an entry keeps its date (or moves earlier) and its reason, unless restated as keyCompromise",
			rl.Number, issuerID, strings.Join(changed, ", "), prev.Number)
	}
	return nil
}

// crlClockSkew is how far in the future an imported CRL's thisUpdate may
// be: the ceremony machine's clock against this one's.
const crlClockSkew = time.Hour

// knownExpiries are the notAfter of the recorded issuers that issuerID
// (whose certificate is parent) certified, by serial (big.Int's decimal
// form).
func knownExpiries(ctx context.Context, db *store.DB, issuerID string, parent *x509.Certificate) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	all, err := db.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	for _, other := range all {
		c, err := x509.ParseCertificate(other.CertificateDER)
		// Of two certificates with one serial (one entry revokes both),
		// the one that expires last.
		if err == nil && other.ID != issuerID && c.CheckSignatureFrom(parent) == nil && c.NotAfter.After(out[c.SerialNumber.String()]) {
			out[c.SerialNumber.String()] = c.NotAfter
		}
	}
	return out, nil
}
