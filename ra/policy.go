package ra

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanadpki/sanad/ca/profile"
)

// Approval rules of policies/ra.yaml.
const (
	ApprovalAuto        = "auto"
	ApprovalOfficer     = "officer"
	ApprovalTwoOfficers = "two-officers"
)

// Policy is the RA policy: how proofing works and who approves what.
type Policy struct {
	CodeTTL         time.Duration
	MaxCodeAttempts int
	EnrollmentTTL   time.Duration
	// RenewalIdentityAge is how long an identity once proven (registry
	// match and one-time code) lets its holder renew a certificate
	// without enrolling again (Service.Renew); zero offers no renewal.
	RenewalIdentityAge time.Duration
	// ExpiryNotice is how long before a certificate expires its holder is
	// reminded (Service.NoticeExpiring); zero sends no reminder.
	ExpiryNotice time.Duration
	// Approval is the rule per end-entity profile name.
	Approval map[string]string
	// CARevocationOfficers distinct CA officers revoke a CA certificate
	// (an OCSP signer's, the audit key's), each asking within
	// CARevocationWithin of the first.
	CARevocationOfficers int
	CARevocationWithin   time.Duration
}

// Approvals is how many distinct officers a profile's enrollments need.
func (p Policy) Approvals(profileName string) int {
	switch p.Approval[profileName] {
	case ApprovalOfficer:
		return 1
	case ApprovalTwoOfficers:
		return 2
	}
	return 0
}

// maxRenewalDays bounds renewal_identity_days: ten years;
// maxExpiryNoticeDays bounds expiry_notice_days: a year.
const (
	maxRenewalDays          = 3650
	maxExpiryNoticeDays     = 365
	maxCARevocationOfficers = 5
)

// A CA certificate is revoked by two CA officers within a day unless
// ra.yaml says otherwise (ca_revocation).
const (
	defaultCARevocationOfficers = 2
	defaultCARevocationWithin   = 24 * time.Hour
)

type policyFile struct {
	CodeTTL         string `yaml:"code_ttl"`
	MaxCodeAttempts int    `yaml:"max_code_attempts"`
	EnrollmentTTL   string `yaml:"enrollment_ttl"`
	// RenewalIdentityDays is RenewalIdentityAge in days (0..maxRenewalDays).
	RenewalIdentityDays int `yaml:"renewal_identity_days"`
	// ExpiryNoticeDays is ExpiryNotice in days (0..maxExpiryNoticeDays).
	ExpiryNoticeDays int `yaml:"expiry_notice_days"`
	// CARevocation is how many CA officers revoke a CA certificate, and
	// within how long (optional: 2 and 24h).
	CARevocation *struct {
		Officers int    `yaml:"officers"`
		Within   string `yaml:"within"`
	} `yaml:"ca_revocation"`
	Profiles map[string]struct {
		Approval string `yaml:"approval"`
	} `yaml:"profiles"`
}

// LoadPolicy reads ra.yaml from fsys and checks it against the profiles:
// every end-entity profile has a rule, every rule a profile. All problems
// are reported at once.
func LoadPolicy(fsys fs.FS, profiles map[string]profile.Profile) (Policy, error) {
	raw, err := fs.ReadFile(fsys, "ra.yaml")
	if err != nil {
		return Policy{}, fmt.Errorf("ra policy: %w", err)
	}
	var f policyFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Policy{}, fmt.Errorf("ra.yaml: %w", err)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ra.yaml: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	p := Policy{MaxCodeAttempts: f.MaxCodeAttempts, Approval: map[string]string{}}
	duration := func(field, v string, lo, hi time.Duration) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			bad(field, "%q is not a duration in %s..%s", v, lo, hi)
		}
		return d
	}
	p.CodeTTL = duration("code_ttl", f.CodeTTL, time.Minute, time.Hour)
	p.EnrollmentTTL = duration("enrollment_ttl", f.EnrollmentTTL, time.Hour, 30*24*time.Hour)
	if p.MaxCodeAttempts < 1 || p.MaxCodeAttempts > 10 {
		bad("max_code_attempts", "%d is not in 1..10", p.MaxCodeAttempts)
	}
	if f.RenewalIdentityDays < 0 || f.RenewalIdentityDays > maxRenewalDays {
		bad("renewal_identity_days", "%d is not in 0..%d", f.RenewalIdentityDays, maxRenewalDays)
	}
	p.RenewalIdentityAge = time.Duration(f.RenewalIdentityDays) * 24 * time.Hour
	if f.ExpiryNoticeDays < 0 || f.ExpiryNoticeDays > maxExpiryNoticeDays {
		bad("expiry_notice_days", "%d is not in 0..%d", f.ExpiryNoticeDays, maxExpiryNoticeDays)
	}
	p.ExpiryNotice = time.Duration(f.ExpiryNoticeDays) * 24 * time.Hour
	// One officer alone could stop issuance (revoking the last OCSP
	// signer) or silence the audit log's checkpoints: never fewer than two.
	p.CARevocationOfficers, p.CARevocationWithin = defaultCARevocationOfficers, defaultCARevocationWithin
	if r := f.CARevocation; r != nil {
		if r.Officers < 2 || r.Officers > maxCARevocationOfficers {
			bad("ca_revocation.officers", "%d is not in 2..%d", r.Officers, maxCARevocationOfficers)
		}
		p.CARevocationOfficers = r.Officers
		p.CARevocationWithin = duration("ca_revocation.within", r.Within, time.Hour, 7*24*time.Hour)
	}
	names := make([]string, 0, len(f.Profiles))
	for name := range f.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rule := f.Profiles[name].Approval
		if !slices.Contains([]string{ApprovalAuto, ApprovalOfficer, ApprovalTwoOfficers}, rule) {
			bad("profiles."+name+".approval", "%q is not auto, officer or two-officers", rule)
		}
		if pr, ok := profiles[name]; !ok || pr.SubjectKind == "" {
			bad("profiles."+name, "no end-entity profile of that name")
		}
		p.Approval[name] = rule
	}
	for name, pr := range profiles {
		if _, ok := f.Profiles[name]; !ok && pr.SubjectKind != "" {
			bad("profiles", "end-entity profile %s has no approval rule", name)
		}
	}
	return p, errors.Join(errs...)
}
