package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/internal/secretfile"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/policies"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/idnum"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// openRA builds the RA over the CA role, with the configured registry and
// notifier, and adds its API to the service's routes.
func openRA(s *service, authority *caRole, cfg config.RA) (*ra.Service, error) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		return nil, err
	}
	policy, err := ra.LoadPolicy(policies.FS, profiles)
	if err != nil {
		return nil, err
	}
	var reg registry.Registry
	switch {
	case cfg.RegistryFile != "":
		if reg, err = registry.OpenFile(cfg.RegistryFile, time.Now); err != nil {
			return nil, err
		}
	case cfg.RegistryURL != "":
		if reg, err = registry.NewHTTP(registry.HTTPConfig{BaseURL: cfg.RegistryURL, TokenFile: cfg.RegistryTokenFile, Now: time.Now}); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the ra role needs ra.registry_file or ra.registry_url")
	}
	proxies, err := s.cfg.HTTP.Proxies()
	if err != nil {
		return nil, err
	}
	var codeKey []byte
	if cfg.CodeKeyFile != "" {
		if codeKey, err = readKeyFile(cfg.CodeKeyFile); err != nil {
			return nil, fmt.Errorf("ra.code_key_file: %w", err)
		}
	} else if cfg.OutboxDir == "" {
		// Codes going out for real (ra.notify_webhook) are never stored
		// as plain SHA-256, which anyone reading a backup reverses (six
		// digits; identifiers that birth dates give away).
		return nil, errors.New("ra.code_key_file is required with ra.notify_webhook: one-time codes, and the national identifiers naming rate-limit buckets, are stored under it (sanad dev writes one; make one with head -c 32 /dev/urandom, mode 0600)")
	} else {
		s.log.Warn("ra.code_key_file is not set: one-time codes, and the national identifiers naming rate-limit buckets, are stored as plain SHA-256, which anyone reading the database can reverse")
	}
	var registryKeys []ra.RegistryKey
	if cfg.RegistryEventKeysFile != "" {
		pemData, err := os.ReadFile(cfg.RegistryEventKeysFile)
		if err != nil {
			return nil, fmt.Errorf("ra.registry_event_keys_file: %w", err)
		}
		if registryKeys, err = ra.ParseRegistryKeys(pemData, time.Now()); err != nil {
			return nil, fmt.Errorf("ra.registry_event_keys_file %s: %w", cfg.RegistryEventKeysFile, err)
		}
	}
	var notifier ra.Notifier
	switch {
	case cfg.OutboxDir != "":
		notifier = ra.Outbox{Dir: cfg.OutboxDir, Log: s.log}
	case cfg.NotifyWebhook != "":
		// The code key, which every RA node shares and configuration
		// requires beside the webhook, keys the messages' idempotency keys.
		notifier = ra.Webhook{URL: cfg.NotifyWebhook, TokenFile: cfg.NotifyWebhookTokenFile, IdempotencySecret: codeKey}
	default:
		return nil, errors.New("the ra role needs ra.notify_webhook (or ra.outbox_dir in development)")
	}
	svc, err := ra.New(ra.Deps{
		Store: s.db, Audit: s.audit, CA: authority, Revoker: authority,
		Issuers:  authority.issuerCertificates(),
		Registry: reg, Notifier: notifier, Profiles: profiles, Policy: policy,
		Forbidden: authority.ca.ForbiddenKeys, Proofs: authority.proofs, RegistryKeys: registryKeys, CodeKey: codeKey, Now: time.Now, Log: s.log,
		ClientLimit: limiter(cfg.ClientPerMinute, time.Minute, max(1, cfg.ClientPerMinute/4)),
		// An IPv6 site (/48) may make eight clients' requests: an office
		// or a campus, as behind an IPv4 NAT, and not 65 536 clients.
		SiteLimit:       limiter(8*cfg.ClientPerMinute, time.Minute, 8*max(1, cfg.ClientPerMinute/4)),
		TrustedProxies:  proxies,
		IdentifierLimit: identifierLimit(cfg.IdentifierPerHour),
		PublicURL:       s.cfg.RAPublicURL(),
		IntentWithProof: s.db.Driver() == store.DriverSQLite,
	})
	if err != nil {
		return nil, err
	}
	s.routes = append(s.routes, svc.Register)
	s.collectors = append(s.collectors, func(reg prometheus.Registerer) error {
		return errors.Join(
			reg.Register(unsentGauge("sanad_ra_revocation_notices_unsent",
				"Revocation notices claimed and not sent (gateway, registry or database down); -1 if the store cannot say.",
				s.db.UnsentRevocationNotices)),
			reg.Register(unsentGauge("sanad_ra_outcome_notices_unsent",
				"Notices of how an enrollment that waited for officers ended, not sent yet; -1 if the store cannot say.",
				s.db.UnsentOutcomeNotices)),
			reg.Register(unsentGauge("sanad_ra_registry_events_pending",
				"Registry events received and not yet carried through (a revocation the CA could not make); -1 if the store cannot say.",
				s.db.PendingRegistryEvents)),
			reg.Register(newWaitingCollector(s.db, s.now)))
	})
	return svc, nil
}

// unsentGauge is a gauge of notices not sent, as count says, or -1 when
// the store cannot say.
func unsentGauge(name, help string, count func(context.Context) (int64, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := count(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// waitingCollector exports, at each scrape, the enrollments waiting for
// their code, for officers, and approved for the CA
// (store.EnrollmentsWaiting): the officers' backlog, and how long its
// oldest has waited, for staffing and alerts; an approved count that stays
// above zero for minutes is an issuance the CA keeps failing.
type waitingCollector struct {
	db            *store.DB
	now           func() time.Time
	count, oldest *prometheus.Desc
}

func newWaitingCollector(db *store.DB, now func() time.Time) waitingCollector {
	return waitingCollector{db: db, now: now,
		count: prometheus.NewDesc("sanad_ra_enrollments_waiting",
			"Enrollments waiting, by state (pending_proof, pending_approval, approved); -1 if the store cannot say.", []string{"state"}, nil),
		oldest: prometheus.NewDesc("sanad_ra_enrollments_waiting_oldest_seconds",
			"How long the enrollment that has waited longest in the state has waited (since it was created; approved ones since the approval or the last attempt, retried every minute); 0 when none waits.", []string{"state"}, nil),
	}
}

func (c waitingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.count; ch <- c.oldest }

func (c waitingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	waiting, err := c.db.EnrollmentsWaiting(ctx)
	if err != nil {
		for _, state := range store.WaitingStates {
			ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, -1, state)
		}
		return
	}
	for _, w := range waiting {
		age := 0.0
		if !w.Oldest.IsZero() {
			age = max(0, c.now().Sub(w.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(w.Count), w.State)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, w.State)
	}
}

// startRA opens the RA and finishes what a stop left approved (ra.Resume;
// a minute is far beyond an issuance in flight on another node), then
// again every minute while it serves: an issuance that failed for a reason
// of the CA's own (ra.Service.issue leaves the enrollment approved) is
// retried without waiting for a restart, enrollments nobody touched past
// their expiry are expired (ra.Service.ExpireLapsed), the identifier
// limit's refilled buckets are pruned, renewals whose old certificate
// was revoked for keyCompromise are withdrawn (ra.Service.SweepWithdrawn),
// and the nonces of signed requests no replay could use are deleted
// (ra.Service.PurgeNonces).
// Every minute too, holders are told of revocations
// (ra.Service.NoticeRevoked) and applicants of how enrollments that waited
// for officers ended (ra.Service.NoticeOutcomes); every hour, holders are
// reminded of expiries (ra.Service.NoticeExpiring).
func startRA(ctx context.Context, s *service, authority *caRole, cfg config.RA) error {
	svc, err := openRA(s, authority, cfg)
	if err != nil {
		return err
	}
	resume := func(ctx context.Context) error {
		n, resumeErr := svc.Resume(ctx, time.Minute)
		if n > 0 {
			s.log.Warn("finished enrollments left approved", "count", n)
		}
		n, expireErr := svc.ExpireLapsed(ctx, 1000)
		if n > 0 {
			s.log.Info("expired lapsed enrollments", "count", n)
		}
		// Buckets that have refilled say nothing a new one would not; an
		// hour's margin covers nodes whose clocks differ.
		_, pruneErr := s.db.PruneRateLimits(ctx, time.Now().Add(-time.Hour))
		// Renewals asked for with a key since revoked for keyCompromise are
		// withdrawn, also those a stop or the CA alone left behind.
		sweepErr := svc.SweepWithdrawn(ctx)
		// Nonces no replay could use any more.
		_, nonceErr := svc.PurgeNonces(ctx)
		return errors.Join(resumeErr, expireErr, pruneErr, sweepErr, nonceErr)
	}
	// An enrollment that cannot be finished now is retried every minute;
	// it does not keep the RA from starting.
	if err := resume(ctx); err != nil {
		s.log.Error("finishing approved enrollments", "err", err)
	}
	s.every(time.Minute, func(ctx context.Context) {
		if err := resume(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("finishing approved enrollments", "err", err)
		}
	})
	// Certificates stored before certificates recorded their key get it,
	// so that a key reported compromised revokes them too (revokeSameKey:
	// SweepWithdrawn goes over the last day's compromises again); then
	// hourly, for what a node of an older release stored meanwhile.
	// Then the certificates of every key ever reported compromised that
	// are not revoked yet are (ra.Service.SweepBlockedKeys): those the
	// keys just recorded show.
	s.fromStart(time.Hour, func(ctx context.Context) {
		n, unreadable, err := ca.FillKeyIDs(ctx, s.db)
		if n > 0 {
			s.log.Info("recorded the keys of stored certificates", "count", n)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("recording the keys of stored certificates", "unreadable", unreadable, "err", err)
		}
		n, err = svc.SweepBlockedKeys(ctx)
		if n > 0 {
			s.log.Warn("revoked the certificates of keys reported compromised", "count", n)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("revoking the certificates of keys reported compromised", "err", err)
		}
	})
	// sweep runs a notice sweep and logs what came of it.
	sweep := func(what string, notices func(context.Context) (int, error)) func(context.Context) {
		return func(ctx context.Context) {
			n, err := notices(ctx)
			if n > 0 {
				s.log.Info(what, "count", n)
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn(what+": the next sweep tries again", "err", err)
			}
		}
	}
	// Holders are told of the revocations the RA did not make, and of
	// those whose notice could not be sent at once; on a loop of its own,
	// since a gateway down makes it wait.
	s.every(time.Minute, sweep("telling holders of revocations", svc.NoticeRevoked))
	// Applicants are told how their enrollment ended when the notice could
	// not be sent at once.
	s.every(time.Minute, sweep("telling applicants how their enrollments ended", svc.NoticeOutcomes))
	// Registry events a delivery could not carry through are carried on.
	s.every(time.Minute, sweep("carrying on registry events", svc.RetryRegistryEvents))
	// Reminders of expiries are days ahead: an hourly sweep is soon enough,
	// and reads the window of certificates that expire soon 60 times less;
	// it runs at start too, for nodes redeployed within the hour.
	s.fromStart(time.Hour, sweep("reminding holders of expiries", svc.NoticeExpiring))
	return nil
}

// devOfficer is an RA officer identity `sanad dev` makes so that the
// approval flow can be tried: a key file and a certificate from the dev CA.
type devOfficer struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	Cert string `json:"cert"`
}

// devOfficerNames are the dev officers; two, for two-officer approvals.
var devOfficerNames = []string{"Dana Officer", "Yerlan Officer"}

// devOfficerRoles are the dev officers' roles: RA officers both, for
// two-officer approvals, and CA officers both, so that a CA certificate,
// which takes two CA officers to revoke, can be revoked locally too.
var devOfficerRoles = []string{"ra-officer", "ca-officer"}

// ensureDevOfficers makes the dev officers on first start: a P-256 key in
// a 0600 file, an officer certificate issued by the dev CA, and the officer
// recorded (devOfficerRoles) with an audit event.
func ensureDevOfficers(ctx context.Context, s *service, authority *caRole, dir string) ([]devOfficer, error) {
	var out []devOfficer
	for i, name := range devOfficerNames {
		o := devOfficer{Name: name, Key: filepath.Join(dir, "officers", fmt.Sprintf("officer-%d.key", i+1)),
			Cert: filepath.Join(dir, "officers", fmt.Sprintf("officer-%d.pem", i+1))}
		out = append(out, o)
		if _, err := os.Stat(o.Cert); err == nil {
			continue
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.Remove(o.Key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err // a key left by a start that failed before its certificate
		}
		if err := writeFileExclusive(o.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
			return nil, err
		}
		iin, err := idnum.KZIIN(time.Date(1985+i, 4, 1+i, 0, 0, 0, 0, time.UTC), i%2 == 1, 9000+i)
		if err != nil {
			return nil, err
		}
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return nil, err
		}
		given, family, _ := strings.Cut(name, " ")
		cert, err := authority.ca.Issue(ctx, ca.Request{Profile: "officer",
			CSR:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}),
			Verified: profile.Verified{Country: "KZ", NationalID: iin, GivenName: given, FamilyName: family}, Actor: "sanad dev"})
		if err != nil {
			return nil, fmt.Errorf("dev officer %s: %w", name, err)
		}
		fp := sha256.Sum256(cert.Raw)
		now := time.Now().UTC()
		if err := s.db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutOfficer(ctx, store.Officer{Fingerprint: fp[:], CertificateDER: cert.Raw, Name: name,
				Roles: devOfficerRoles, Active: true, CreatedAt: now}); err != nil {
				return err
			}
			err := s.audit.Append(tx, audit.Event{Actor: "sanad dev", Action: "officer.register", Object: fmt.Sprintf("officer/%x", fp),
				Details: map[string]any{"name": name, "roles": devOfficerRoles, "serial": jwsauth.SerialHex(cert.SerialNumber)}})
			return err
		}); err != nil {
			return nil, err
		}
		if err := writeFileExclusive(o.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ensureDevCodeKey writes the key one-time codes are stored under on
// first start: 32 random bytes, hex, mode 0600.
func ensureDevCodeKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	err := writeFileExclusive(path, []byte(hex.EncodeToString(key)+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// ensureDevRegistryKey makes, on first start, the key the dev registry's
// events are signed with: the private key at keyPath (0600), for
// `sanad registry sign-event`, and its public key at pubPath, which
// ra.registry_event_keys_file names.
func ensureDevRegistryKey(keyPath, pubPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileExclusive(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// The private key on disk decides: a public key left from another
	// start is written again from it.
	signer, err := jwsauth.LoadSigner(keyPath)
	if err != nil {
		return fmt.Errorf("%s: %w", keyPath, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// ensureDevRegistry writes the sample registry on first start.
func ensureDevRegistry(path string) error {
	err := writeFileExclusive(path, registry.SampleJSON(), 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// limiter allows n requests per period per key, in bursts of burst; n = 0
// is no limit.
func limiter(n int, per time.Duration, burst int) *api.Limiter {
	if n == 0 {
		return nil
	}
	return api.NewLimiter(n, per, burst, 100_000, time.Now)
}

// identifierLimit is n enrollments an hour per national identifier, all at
// once if need be, kept in the database for every RA node; n = 0 is no
// limit.
func identifierLimit(n int) *store.Bucket {
	if n == 0 {
		return nil
	}
	return &store.Bucket{Rate: float64(n) / time.Hour.Seconds(), Burst: float64(n)}
}

// readKeyFile reads a secret key file (secretfile.Read: owner-only,
// trailing newline aside) of at least 32 bytes.
func readKeyFile(path string) ([]byte, error) {
	b, err := secretfile.Read("key file", path)
	if err != nil {
		return nil, err
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("%s holds %d bytes; a key needs at least 32", path, len(b))
	}
	return b, nil
}
