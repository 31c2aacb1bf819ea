// Package lint runs zlint over certificates and CRLs before they are
// trusted: every error, warning or fatal result stops the caller, named.
//
// Sanad is a national identity PKI, not a Web PKI: lints that apply only to
// TLS server certificates are still run, because their conditions (such as
// the serverAuth EKU) never match our certificates; the few CA/Browser Forum
// lints that contradict Sanad's own policy are excluded by name in the
// caller's Options, each with its reason.
//
// This package never signs: callers lint a copy of a certificate with a
// throw-away signature before the HSM signs, and ceremonies lint the real
// one after.
package lint

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"github.com/zmap/zlint/v3/util"
)

// ErrLint is wrapped by every finding.
var ErrLint = errors.New("lint failed")

// Linter holds a filtered zlint registry.
type Linter struct {
	registry lint.Registry
	// crlRegistry is registry without the lints emptySequences runs in
	// their stead; crlOwn names those of them registry runs.
	crlRegistry lint.Registry
	crlOwn      map[string]bool
	// certificateLints and config are the registry's, read once: see
	// Certificate.
	certificateLints []*lint.CertificateLint
	config           lint.Configuration
}

// New returns a Linter running every zlint lint except the named ones, with
// config (zlint's TOML lint configuration; "" for the defaults).
func New(config string, exclude ...string) (*Linter, error) {
	// Any non-empty filter yields a registry of our own, so configuring it
	// never touches zlint's global registry; with nothing to exclude, a name
	// filter that keeps every lint does that (zlint refuses both at once).
	opts := lint.FilterOptions{ExcludeNames: exclude}
	if len(exclude) == 0 {
		opts = lint.FilterOptions{NameFilter: regexp.MustCompile(`.`)}
	}
	reg, err := lint.GlobalRegistry().Filter(opts)
	if err != nil {
		return nil, fmt.Errorf("zlint registry: %w", err)
	}
	cfg, err := lint.NewConfigFromString(config)
	if err != nil {
		return nil, fmt.Errorf("zlint configuration: %w", err)
	}
	reg.SetConfiguration(cfg)
	l := &Linter{registry: reg, crlRegistry: reg, certificateLints: reg.CertificateLints().Lints(), config: reg.GetConfiguration(), crlOwn: map[string]bool{}}
	var own []string
	for _, name := range []string{lintEmptyRevoked, lintEmptyEntryExt} {
		if reg.RevocationListLints().ByName(name) != nil {
			l.crlOwn[name] = true
			own = append(own, name)
		}
	}
	if len(own) > 0 {
		if l.crlRegistry, err = reg.Filter(lint.FilterOptions{ExcludeNames: own}); err != nil {
			return nil, fmt.Errorf("zlint registry: %w", err)
		}
		l.crlRegistry.SetConfiguration(cfg)
	}
	return l, nil
}

// Certificate lints a DER certificate.
func (l *Linter) Certificate(der []byte) error {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: zcrypto cannot parse the certificate: %v", ErrLint, err)
	}
	// Each lint runs as zlint.LintCertificateEx runs it (framework filter,
	// configuration, CheckApplies, CheckEffective, Execute, a panic being
	// Fatal), without what it adds per certificate for reports we do not
	// make: the registry's names, sorted, and a map of every result. That
	// was a sixth of linting's cost, and issuance lints every certificate.
	//
	// zlint's framework filter (a CA/B Forum lint applies only to a
	// certificate of its kind: TLS server, S/MIME, code signing) is decided
	// once per certificate here, where zlint decides it again in each of
	// the filtered lints; most lints are the Forum's, and none of their
	// kinds is ours, so that was a fifth of linting's cost.
	var bad []string
	f := frameworkOf(c)
	for _, cl := range l.certificateLints {
		if f.skips(cl) {
			continue
		}
		if r := cl.Execute(c, l.config); r.Status >= lint.Warn {
			bad = append(bad, finding(cl.Name, r))
		}
	}
	return badResults(bad)
}

// framework is what zlint's framework filter (lint.CertificateLint's
// execute) asks of a certificate: which CA/B Forum kind it is.
type framework struct{ serverAuth, emailProtection, codeSigning bool }

func frameworkOf(c *zx509.Certificate) framework {
	return framework{util.IsServerAuthCert(c), util.IsEmailProtectionCert(c), util.IsCodeSigning(c.PolicyIdentifiers)}
}

// skips is whether zlint would answer NA for cl without running it.
func (f framework) skips(cl *lint.CertificateLint) bool {
	if cl.OverrideFrameworkFilter {
		return false
	}
	switch cl.Source {
	case lint.CABFBaselineRequirements:
		return !f.serverAuth
	case lint.CABFSMIMEBaselineRequirements:
		return !f.emailProtection
	case lint.CABFCSBaselineRequirements:
		return !f.codeSigning
	}
	return false
}

// RevocationList lints a DER CRL: every CRL lint of the registry, two of
// them as emptySequences.
func (l *Linter) RevocationList(der []byte) error {
	crl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%w: zcrypto cannot parse the CRL: %v", ErrLint, err)
	}
	return badResults(append(results(zlint.LintRevocationListEx(crl, l.crlRegistry)), emptySequences(der, crl.ThisUpdate, l.crlOwn)...))
}

func findings(rs *zlint.ResultSet) error { return badResults(results(rs)) }

// results are the findings of a result set: its warnings, errors and
// fatal results, named.
func results(rs *zlint.ResultSet) []string {
	var bad []string
	for name, r := range rs.Results {
		if r.Status >= lint.Warn {
			bad = append(bad, finding(name, r))
		}
	}
	return bad
}

// finding names a lint and what it found.
func finding(name string, r *lint.LintResult) string {
	msg := name + " (" + r.Status.String()
	if r.Details != "" {
		msg += ": " + r.Details
	}
	return msg + ")"
}

func badResults(bad []string) error {
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%w: %s", ErrLint, strings.Join(bad, "; "))
}
