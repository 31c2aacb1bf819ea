package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// officerRoles are the roles an officer may hold; the RA acts only for
// ra-officer.
var officerRoles = []string{"ra-officer", "ca-officer", "auditor"}

// The officer register, deactivate and list commands administer who is an
// officer. Unlike the others they sign nothing and call no RA: they run on a
// CA node against the store of --config, as a ceremony does, and each change
// is an audit event naming the operating-system account that made it. The
// certificate comes from an enrollment with the officer profile, which two
// officers approve.
func newOfficerAdminCmds(loadConfig func() (config.Config, error)) []*cobra.Command {
	register := &cobra.Command{
		Use:   "register CERT",
		Short: "Make the holder of an officer certificate of this CA an officer (on a CA node; audited)",
		Args:  cobra.ExactArgs(1),
	}
	name := register.Flags().String("name", "", "the officer's name, as the audit log and queue show it")
	roles := register.Flags().StringSlice("role", []string{"ra-officer"}, "role: "+strings.Join(officerRoles, ", "))
	register.RunE = func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(*name) == "" {
			return usagef("--name is required")
		}
		for _, r := range *roles {
			if !slices.Contains(officerRoles, r) {
				return usagef("--role %q is not one of %s", r, strings.Join(officerRoles, ", "))
			}
		}
		cert, err := readCertificateFile(args[0])
		if err != nil {
			return err
		}
		return withStore(cmd, loadConfig, func(ctx context.Context, s *service) error {
			if err := checkOfficerCertificate(ctx, s.db, cert, s.now()); err != nil {
				return err
			}
			fp := sha256.Sum256(cert.Raw)
			err := s.db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.PutOfficer(ctx, store.Officer{Fingerprint: fp[:], CertificateDER: cert.Raw, Name: *name,
					Roles: *roles, Active: true, CreatedAt: s.now().UTC()}); err != nil {
					return err
				}
				return s.audit.Append(tx, audit.Event{Actor: operator(), Action: "officer.register", Object: fmt.Sprintf("officer/%x", fp),
					Details: map[string]any{"name": *name, "roles": *roles, "subject": cert.Subject.String(),
						"serial": jwsauth.SerialHex(cert.SerialNumber), "not_after": cert.NotAfter}})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered officer %s (%s), fingerprint %x\n", *name, strings.Join(*roles, ", "), fp)
			return nil
		})
	}

	deactivate := &cobra.Command{
		Use:   "deactivate CERT|FINGERPRINT",
		Short: "Withdraw an officer: their signed requests are refused from now on (on a CA node; audited)",
		Args:  cobra.ExactArgs(1),
	}
	reason := deactivate.Flags().String("reason", "", "why, for the audit log")
	_ = deactivate.MarkFlagRequired("reason")
	deactivate.RunE = func(cmd *cobra.Command, args []string) error {
		fp, err := officerFingerprint(args[0])
		if err != nil {
			return err
		}
		return withStore(cmd, loadConfig, func(ctx context.Context, s *service) error {
			o, err := s.db.Officer(ctx, fp)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no officer has the certificate %x", fp)
			}
			if err != nil {
				return err
			}
			if !o.Active {
				return fmt.Errorf("officer %s is already inactive (since %s)", o.Name, o.UpdatedAt.Format(time.RFC3339))
			}
			// PutOfficer keeps created_at and takes CreatedAt as the time
			// of this change (updated_at).
			o.Active, o.CreatedAt = false, s.now().UTC()
			err = s.db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.PutOfficer(ctx, o); err != nil {
					return err
				}
				return s.audit.Append(tx, audit.Event{Actor: operator(), Action: "officer.deactivate", Object: fmt.Sprintf("officer/%x", fp),
					Details: map[string]any{"name": o.Name, "reason": *reason}})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deactivated officer %s, fingerprint %x\n", o.Name, fp)
			return nil
		})
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the officers recorded in the store, active or not (on a CA node)",
		Args:  cobra.NoArgs,
	}
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		return withStore(cmd, loadConfig, func(ctx context.Context, s *service) error {
			officers, err := s.db.Officers(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tACTIVE\tROLES\tSUBJECT SERIALNUMBER\tNOT AFTER\tFINGERPRINT")
			for _, o := range officers {
				subject, notAfter := "?", "?"
				if c, err := x509.ParseCertificate(o.CertificateDER); err == nil {
					subject, notAfter = c.Subject.SerialNumber, c.NotAfter.UTC().Format(time.DateOnly)
				}
				fmt.Fprintf(w, "%s\t%t\t%s\t%s\t%s\t%x\n", o.Name, o.Active, strings.Join(o.Roles, ","), subject, notAfter, o.Fingerprint)
			}
			return w.Flush()
		})
	}
	return []*cobra.Command{register, deactivate, list}
}

// withStore runs f with the store of --config opened (no HSM key is
// needed to administer officers).
func withStore(cmd *cobra.Command, loadConfig func() (config.Config, error), f func(context.Context, *service) error) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	s, err := openKeylessService(cmd.Context(), cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	defer s.close()
	return f(cmd.Context(), s)
}

// checkOfficerCertificate refuses a certificate the issuing CA in db did
// not issue with the officer profile, or that is not valid now or not good.
func checkOfficerCertificate(ctx context.Context, db *store.DB, cert *x509.Certificate, now time.Time) error {
	issuers, err := db.Issuers(ctx)
	if err != nil {
		return err
	}
	is, ok := certifiedBy(cert, issuers, "issuing")
	if !ok {
		return errors.New("no issuing CA in the store issued this certificate")
	}
	row, err := db.Certificate(ctx, is.ID, cert.SerialNumber.Bytes())
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(row.DER, cert.Raw):
		return fmt.Errorf("the certificate is not in the records of issuing CA %s", is.ID)
	case err != nil:
		return err
	case row.Profile != "officer":
		return fmt.Errorf("the certificate was issued with profile %s, not officer", row.Profile)
	case row.Status != store.StatusGood:
		return fmt.Errorf("the certificate is %s", row.Status)
	case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
		return fmt.Errorf("the certificate is valid from %s to %s", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// readCertificateFile reads one certificate, PEM (pemCertificates) or DER.
func readCertificateFile(path string) (*x509.Certificate, error) {
	raw, err := readBounded(path, maxChainFile)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(raw); block == nil {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return cert, nil
	}
	certs, err := pemCertificates(path, raw)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s holds %d certificates, not one", path, len(certs))
	}
	return certs[0], nil
}

// officerFingerprint is the SHA-256 of the certificate in the file arg, or
// arg itself as 64 hex digits (as officer list prints it).
func officerFingerprint(arg string) ([]byte, error) {
	if fp, err := hex.DecodeString(arg); err == nil && len(fp) == sha256.Size {
		return fp, nil
	}
	cert, err := readCertificateFile(arg)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a certificate file nor a SHA-256 fingerprint: %w", arg, err)
	}
	fp := sha256.Sum256(cert.Raw)
	return fp[:], nil
}

// operator names who ran an administrative command, for the audit log:
// the operating-system account, which a CA node gives each person.
func operator() string {
	if u, err := user.Current(); err == nil {
		return "operator:" + u.Username
	}
	return fmt.Sprintf("operator:uid %d", os.Getuid())
}
