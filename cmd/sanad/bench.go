package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/ra"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the CA on the configured store and HSM",
		Long: `Benchmarks that run the real code paths on the configured database and HSM.
They write real certificates, revocations and audit events: run them on a
development or staging deployment, never on the production CA.`,
	}
	cmd.AddCommand(newBenchIssueCmd(), newBenchCRLCmd(), newBenchEnrollCmd(), newBenchOCSPCmd())
	return cmd
}

// issueReport is what `sanad bench issue` measured.
type issueReport struct {
	Database     string  `json:"database"`
	Profile      string  `json:"profile"`
	Certificates int     `json:"certificates"`
	Parallel     int     `json:"parallel"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"certificates_per_second"`
	P50ms        float64 `json:"latency_p50_ms"`
	P99ms        float64 `json:"latency_p99_ms"`
	// The HSM's raw ECDSA P-256 signatures/s, measured in the same run
	// with a key made for the purpose: on one session, and with as many
	// goroutines as the issuance used.
	RawOneSession float64 `json:"raw_p256_signatures_per_second_1_session"`
	RawParallel   float64 `json:"raw_p256_signatures_per_second_parallel"`
	// Ratio is PerSecond / RawParallel. Each certificate costs two
	// signatures (certificate and OCSP response), so the ceiling is 0.5.
	Ratio float64 `json:"ratio_to_raw"`
	// CPU this process spent (user and system, all threads; a database
	// server's own is not counted): per certificate issued, and per raw
	// signature in the parallel measurement. Where the HSM is a library in
	// the process (SoftHSM2), its signatures are part of both, and on a
	// machine the run saturates, Ratio approaches RawCPUms / CPUms.
	CPUms    float64 `json:"cpu_ms_per_certificate"`
	RawCPUms float64 `json:"raw_cpu_ms_per_signature_parallel"`
	// The least CPU a certificate can cost on this machine: ca.Check (the
	// CSR, its proof of possession, the template and zlint, which Issue
	// must do and which touch neither the store nor the HSM), timed one at
	// a time before the issuance, plus two raw signatures. With every CPU
	// doing nothing else, the rate cannot pass CPUs / FloorCPUms, nor the
	// ratio RatioBound, whatever the store.
	CheckCPUms float64 `json:"check_cpu_ms_per_certificate"`
	FloorCPUms float64 `json:"floor_cpu_ms_per_certificate"`
	CPUs       int     `json:"cpus"`
	RatioBound float64 `json:"ratio_bound"`
}

func newBenchIssueCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue N certificates in parallel through ca.Issue and compare with the HSM's raw signing rate",
		Args:  cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	n := cmd.Flags().IntP("count", "n", 10000, "certificates to issue")
	parallel := cmd.Flags().IntP("parallel", "p", 64, "issuances in flight at once")
	profileName := cmd.Flags().String("profile", "citizen-auth", "end-entity profile to issue")
	rawFor := cmd.Flags().Duration("raw-duration", 3*time.Second, "how long to measure the raw HSM rate, per measurement")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cpuProfile := cmd.Flags().String("cpuprofile", "", "write a CPU profile of the issuance to this file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *n < 1 || *parallel < 1 || *rawFor <= 0 {
			return usagef("--count and --parallel must be at least 1, --raw-duration positive")
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, cmd.ErrOrStderr())
		ctx := cmd.Context()
		s, authority, err := openServiceWithCA(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer s.close()
		rep := issueReport{Database: cfg.Database.Driver, Profile: *profileName, Certificates: *n, Parallel: *parallel}
		if rep.RawOneSession, rep.RawParallel, rep.RawCPUms, err = s.rawSignRates(ctx, *parallel, *rawFor); err != nil {
			return err
		}
		// A fresh request each, for the checks and for the issuance: the
		// CA does not verify again a request it saw verify (csr.Proofs).
		checks, err := benchCSRs(checkWarmup + min(*n, 500))
		if err != nil {
			return err
		}
		if rep.CheckCPUms, err = checkCPU(authority.ca, *profileName, checks); err != nil {
			return err
		}
		csrs, err := benchCSRs(*n)
		if err != nil {
			return err
		}
		log.Info("issuing", "certificates", *n, "parallel", *parallel, "profile", *profileName)
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		cpu0 := processCPU()
		lat, elapsed, err := runParallel(*n, *parallel, func(i int) error {
			_, err := authority.ca.Issue(ctx, ca.Request{Profile: *profileName, CSR: csrs[i],
				Verified: benchApplicant, Actor: "sanad bench issue"})
			return err
		})
		rep.CPUms = ms(processCPU()-cpu0) / float64(*n)
		if err := errors.Join(err, stopProfile()); err != nil {
			return err
		}
		rep.Seconds = elapsed.Seconds()
		rep.PerSecond = float64(*n) / elapsed.Seconds()
		rep.P50ms, rep.P99ms = percentileMS(lat, 50), percentileMS(lat, 99)
		rep.Ratio = rep.PerSecond / rep.RawParallel
		rep.FloorCPUms = rep.CheckCPUms + 2*rep.RawCPUms
		rep.CPUs = runtime.GOMAXPROCS(0)
		rep.RatioBound = float64(rep.CPUs) * 1000 / rep.FloorCPUms / rep.RawParallel
		return printReport(cmd.OutOrStdout(), *asJSON, rep, func(w io.Writer) {
			fmt.Fprintf(w, "sanad bench issue: %d %s certificates, %d in parallel, %s\n", rep.Certificates, rep.Profile, rep.Parallel, rep.Database)
			fmt.Fprintf(w, "  issued     %.0f certificates/s (%.1f s; latency p50 %.1f ms, p99 %.1f ms)\n", rep.PerSecond, rep.Seconds, rep.P50ms, rep.P99ms)
			fmt.Fprintf(w, "  HSM raw    %.0f P-256 signatures/s on 1 session, %.0f/s with %d in parallel\n", rep.RawOneSession, rep.RawParallel, rep.Parallel)
			fmt.Fprintf(w, "  ratio      %.1f %% of the raw parallel rate (ceiling 50 %%: two signatures per certificate)\n", 100*rep.Ratio)
			fmt.Fprintf(w, "  CPU        %.2f ms per certificate in this process, %.3f ms per raw signature: a certificate costs %.1f signatures' CPU\n",
				rep.CPUms, rep.RawCPUms, rep.CPUms/rep.RawCPUms)
			fmt.Fprintf(w, "  floor      ca.Check %.2f ms (CSR, template, zlint) + two raw signatures = %.2f ms CPU per certificate: on %d CPUs at most %.0f/s, %.1f %% of the raw rate, even with a store that cost nothing\n",
				rep.CheckCPUms, rep.FloorCPUms, rep.CPUs, float64(rep.CPUs)*1000/rep.FloorCPUms, 100*rep.RatioBound)
		})
	}
	return cmd
}

// checkWarmup is how many of checkCPU's requests are not counted.
const checkWarmup = 20

// checkCPU is how long, in milliseconds, ca.Check takes per request, over
// all of csrs but the first checkWarmup, one at a time. Elapsed time on one
// goroutine, which computes all along, is its CPU; the process CPU would
// also count what the CA does in the background meanwhile.
func checkCPU(authority *ca.CA, profileName string, csrs [][]byte) (float64, error) {
	check := func(csr []byte) error {
		return authority.Check(ca.Request{Profile: profileName, CSR: csr, Verified: benchApplicant})
	}
	for _, csr := range csrs[:checkWarmup] {
		if err := check(csr); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	for _, csr := range csrs[checkWarmup:] {
		if err := check(csr); err != nil {
			return 0, err
		}
	}
	return ms(time.Since(start)) / float64(len(csrs)-checkWarmup), nil
}

// benchApplicant is the verified identity bench certificates are issued to:
// clearly not a person (no real identifier has the BENCH prefix).
var benchApplicant = profile.Verified{Country: "KZ", NationalID: "BENCH0000001", GivenName: "Bench", FamilyName: "Sanad"}

// benchCSRs makes n CSRs for fresh P-256 keys, before the clock starts.
func benchCSRs(n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return nil, err
		}
		out[i] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return out, nil
}

// runParallel calls op(0..n-1) from parallel goroutines and returns each
// call's latency and the wall time. The first error stops the run.
func runParallel(n, parallel int, op func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var (
		mu    sync.Mutex
		first error
	)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(parallel, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := op(i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

// percentileMS is the p-th percentile of lat, in milliseconds.
func percentileMS(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Microseconds()) / 1000
}

// rawSignRates measures how many ECDSA P-256 signatures/s the token makes
// on one session and with parallel goroutines, with a key generated for
// the measurement and destroyed after it. No CA key signs benchmark data.
// Both changes to the token are audited.
func (s *service) rawSignRates(ctx context.Context, parallel int, d time.Duration) (one, many, cpuMS float64, err error) {
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return 0, 0, 0, err
	}
	label := "sanad-bench-" + hex.EncodeToString(suffix)
	key, err := s.token.GenerateKey(ctx, hsm.KeySpec{Label: label, Type: hsm.ECDSAP256})
	if err != nil {
		return 0, 0, 0, err
	}
	event := func(action string) audit.Event {
		return audit.Event{Actor: "sanad bench", Action: action, Object: s.cfg.HSM.TokenLabel + "/" + label,
			Details: map[string]any{"purpose": "raw signing rate measurement", "type": string(hsm.ECDSAP256)}}
	}
	defer func() {
		derr := key.Destroy(context.WithoutCancel(ctx))
		if derr == nil {
			derr = s.record(context.WithoutCancel(ctx), event("hsm.key.destroy"))
		}
		err = errors.Join(err, derr)
	}()
	if err := s.record(ctx, event("hsm.key.generate")); err != nil {
		return 0, 0, 0, err
	}
	if one, _, err = signRate(ctx, key, 1, d); err != nil {
		return 0, 0, 0, err
	}
	many, cpuMS, err = signRate(ctx, key, parallel, d)
	return one, many, cpuMS, err
}

// signRate signs random digests from parallel goroutines for d, and says
// how many per second and the process CPU per signature in milliseconds.
func signRate(ctx context.Context, key crypto.Signer, parallel int, d time.Duration) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var count atomic.Int64
	errs := make(chan error, parallel)
	start, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			digest := sha256.Sum256([]byte("sanad bench"))
			// At least one signature each, even when d has passed before
			// the first (a loaded machine): no count of zero, no infinite
			// CPU per signature.
			for {
				if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					errs <- err
					return
				}
				count.Add(1)
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	cpu := processCPU() - cpu0
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	n := float64(count.Load())
	return n / time.Since(start).Seconds(), ms(cpu) / n, nil
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printReport prints rep as JSON, or as text through text.
func printReport(w io.Writer, asJSON bool, rep any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	text(w)
	return nil
}

// startCPUProfile profiles the process into path until the returned stop
// is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// crlReport is what `sanad bench crl` measured.
type crlReport struct {
	Database string `json:"database"`
	// Seeding issued the certificates that are then revoked.
	Certificates   int     `json:"certificates"`
	SeedPerSecond  float64 `json:"seed_certificates_per_second"`
	RevokeSeconds  float64 `json:"revoke_seconds"`
	RevokesPerSec  float64 `json:"revocations_per_second"`
	Sample         int     `json:"sample"`
	FirstP50ms     float64 `json:"first_revocations_p50_ms"`
	FirstP99ms     float64 `json:"first_revocations_p99_ms"`
	LastP50ms      float64 `json:"last_revocations_p50_ms"`
	LastP99ms      float64 `json:"last_revocations_p99_ms"`
	CRLsPublished  int64   `json:"crls_published_while_revoking"`
	CRLEntries     int     `json:"crl_entries"`
	CRLBytes       int     `json:"crl_bytes"`
	CRLBuildMillis float64 `json:"crl_build_ms"`
}

func newBenchCRLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crl",
		Short: "Revoke N certificates one request at a time while the publisher rebuilds the CRL; time the CRL at N entries",
		Args:  cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	n := cmd.Flags().IntP("count", "n", 100000, "certificates to issue, then revoke one by one")
	parallel := cmd.Flags().IntP("parallel", "p", 64, "issuances in flight while seeding")
	sample := cmd.Flags().Int("sample", 1000, "revocations in the first and last latency samples")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *n < 1 || *parallel < 1 || *sample < 1 {
			return usagef("--count, --parallel and --sample must be at least 1")
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, cmd.ErrOrStderr())
		ctx := cmd.Context()
		s, authority, err := openServiceWithCA(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer s.close()
		rep := crlReport{Database: cfg.Database.Driver, Certificates: *n, Sample: min(*sample, *n)}

		log.Info("seeding", "certificates", *n, "parallel", *parallel)
		// A fresh request each: the CA does not verify again a request it
		// saw verify (csr.Proofs), and seeding is a rate it reports.
		csrs, err := benchCSRs(*n)
		if err != nil {
			return err
		}
		serials := make([][]byte, *n)
		_, elapsed, err := runParallel(*n, *parallel, func(i int) error {
			c, err := authority.ca.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csrs[i],
				Verified: benchApplicant, Actor: "sanad bench crl"})
			if err == nil {
				serials[i] = c.SerialNumber.Bytes()
			}
			return err
		})
		if err != nil {
			return err
		}
		rep.SeedPerSecond = float64(*n) / elapsed.Seconds()

		// The publisher runs as in production: it rebuilds the CRL on
		// revocations, at most every few seconds, beside them.
		before, err := s.db.CRLCount(ctx, authority.crlFrom.ID)
		if err != nil {
			return err
		}
		pubCtx, stopPublisher := context.WithCancel(ctx)
		published := make(chan error, 1)
		go func() { published <- authority.publisher.Run(pubCtx) }()
		log.Info("revoking one at a time", "certificates", *n)
		lat, elapsed, err := runParallel(*n, 1, func(i int) error {
			return authority.ca.Revoke(ctx, serials[i], 1, "sanad bench crl")
		})
		stopPublisher()
		if err := errors.Join(err, <-published); err != nil {
			return err
		}
		rep.RevokeSeconds = elapsed.Seconds()
		rep.RevokesPerSec = float64(*n) / elapsed.Seconds()
		first, last := lat[:rep.Sample], lat[len(lat)-rep.Sample:]
		rep.FirstP50ms, rep.FirstP99ms = percentileMS(first, 50), percentileMS(first, 99)
		rep.LastP50ms, rep.LastP99ms = percentileMS(last, 50), percentileMS(last, 99)
		after, err := s.db.CRLCount(ctx, authority.crlFrom.ID)
		if err != nil {
			return err
		}
		rep.CRLsPublished = after - before

		t0 := time.Now()
		c, err := authority.publisher.PublishCRL(ctx)
		if err != nil {
			return err
		}
		rep.CRLBuildMillis = float64(time.Since(t0).Microseconds()) / 1000
		rep.CRLBytes = len(c.DER)
		parsed, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			return err
		}
		rep.CRLEntries = len(parsed.RevokedCertificateEntries)
		return printReport(cmd.OutOrStdout(), *asJSON, rep, func(w io.Writer) {
			fmt.Fprintf(w, "sanad bench crl: %d certificates revoked one at a time, %s\n", rep.Certificates, rep.Database)
			fmt.Fprintf(w, "  seeded     %.0f certificates/s\n", rep.SeedPerSecond)
			fmt.Fprintf(w, "  revoked    %.0f/s (%.1f s), %d CRLs published meanwhile\n", rep.RevokesPerSec, rep.RevokeSeconds, rep.CRLsPublished)
			fmt.Fprintf(w, "  latency    first %d: p50 %.2f ms, p99 %.2f ms; last %d: p50 %.2f ms, p99 %.2f ms\n",
				rep.Sample, rep.FirstP50ms, rep.FirstP99ms, rep.Sample, rep.LastP50ms, rep.LastP99ms)
			fmt.Fprintf(w, "  CRL        %d entries, %d bytes, built (signed, linted, stored) in %.0f ms\n", rep.CRLEntries, rep.CRLBytes, rep.CRLBuildMillis)
		})
	}
	return cmd
}

// enrollReport is what `sanad bench enroll` measured.
type enrollReport struct {
	Database    string `json:"database"`
	Profile     string `json:"profile"`
	Enrollments int    `json:"enrollments"`
	Parallel    int    `json:"parallel"`
	// Warmup enrollments were made first, untimed and not counted.
	Warmup    int     `json:"warmup"`
	PerSecond float64 `json:"enrollments_per_second"`
	P50ms     float64 `json:"latency_p50_ms"`
	P99ms     float64 `json:"latency_p99_ms"`
	// CPUms is the process's CPU time (user and system, the client's
	// included: it runs in the process) per enrollment, and CPUs how many
	// the process may use: CPUs / CPUms bounds the rate on this machine
	// when nothing else uses its CPUs (a PostgreSQL server on the same
	// machine does, and is not counted).
	CPUms float64 `json:"cpu_ms_per_enrollment"`
	CPUs  int     `json:"cpus"`
	// The group commits of the enrollments (store.GroupStats): database
	// transactions per enrollment, and the RA's and CA's writes that
	// shared each. Each enrollment makes two RA writes (the enrollment
	// with its rate limits, the proof) and one or two CA writes (the signed
	// certificate; its intent too where the proof does not carry it); the
	// CA's go in as one caller per batch of them.
	CommitsPerEnrollment float64 `json:"commits_per_enrollment"`
	CallersPerCommit     float64 `json:"callers_per_commit"`
	// GroupBusyShare is the share of the run the group transactions ran
	// (on SQLite, about the one writer's occupancy; on PostgreSQL a sum
	// over the RA's and the CA's groups, which may pass 1), and
	// GroupWaitMS how long an enrollment's writes spent in the store's
	// group commits, queued and running, one after the other: of its
	// latency, a part spent waiting for commits. It understates that
	// part: the CA's certificates queue in a batch of their own before,
	// and a batch counts as one write (store.GroupStats).
	GroupBusyShare float64 `json:"group_busy_share"`
	GroupWaitMS    float64 `json:"group_wait_ms_per_enrollment"`
	// Issue is ca.Issue alone, in the same run, for comparison.
	IssuePerSecond float64 `json:"issue_certificates_per_second"`
	IssueCPUms     float64 `json:"issue_cpu_ms_per_certificate"`
}

// memoryNotifier keeps one-time codes for the benchmark's applicants.
type memoryNotifier struct{ codes sync.Map }

func (m *memoryNotifier) Send(_ context.Context, msg ra.Message) error {
	m.codes.Store(msg.EnrollmentID, msg.Code)
	return nil
}

func newBenchEnrollCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enroll",
		Short: "Complete enrollments (enroll, prove, issued) through the RA's REST API with an auto-approved profile, and ca.Issue alone in the same run",
		Args:  cobra.NoArgs,
	}
	loadConfig := configFlag(cmd)
	n := cmd.Flags().IntP("count", "n", 5000, "enrollments to complete")
	parallel := cmd.Flags().IntP("parallel", "p", 64, "applicants at once")
	warmup := cmd.Flags().Int("warmup", 200, "enrollments made before the timed ones, untimed (as scripts/bench-stepca's step-ca load does)")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cpuProfile := cmd.Flags().String("cpuprofile", "", "write a CPU profile of the enrollments to this file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *n < 1 || *parallel < 1 || *warmup < 0 {
			return usagef("--count and --parallel must be at least 1, --warmup at least 0")
		}
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		log := newLogger(cfg.Log, cmd.ErrOrStderr())
		ctx := cmd.Context()
		s, authority, err := openServiceWithCA(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer s.close()
		// The RA as served, on a loopback port of its own: the sample
		// registry and codes kept in memory. One client enrolls one
		// applicant thousands of times, so the rate limits are set too
		// high to refuse anything, but are kept and spent as they are in
		// service (the identifier's bucket is a row of the database).
		codes := &memoryNotifier{}
		raCfg := config.RA{OutboxDir: "unused", ClientPerMinute: 1 << 30, IdentifierPerHour: 1 << 30}
		raCfg.RegistryFile, raCfg.RegistryURL = cfg.RA.RegistryFile, cfg.RA.RegistryURL
		if raCfg.RegistryFile == "" && raCfg.RegistryURL == "" {
			return errors.New("bench enroll needs ra.registry_file or ra.registry_url (sanad dev writes the sample)")
		}
		svc, err := openRA(s, authority, raCfg)
		if err != nil {
			return err
		}
		svc.SetNotifier(codes)
		mux := http.NewServeMux()
		svc.Register(mux)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		base := "http://" + ln.Addr().String()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *parallel, MaxConnsPerHost: *parallel}, Timeout: time.Minute}

		// A fresh request each, for the enrollments and for ca.Issue
		// alone: the CA does not verify again a request it saw verify
		// (csr.Proofs), and the RA shares what it saw with the CA.
		csrs, err := benchCSRs(*warmup + *n)
		if err != nil {
			return err
		}
		issueCSRs, err := benchCSRs(*n)
		if err != nil {
			return err
		}
		rep := enrollReport{Database: cfg.Database.Driver, Profile: "citizen-auth", Enrollments: *n, Parallel: *parallel, Warmup: *warmup}
		// The warm-up fills the caches the timed run would otherwise fill
		// in its first seconds (SQLite's pages, the HTTP connections, the
		// HSM's sessions), as step-ca gets its own before it is timed.
		if *warmup > 0 {
			log.Info("warming up", "enrollments", *warmup, "parallel", *parallel)
			if _, _, err := runParallel(*warmup, *parallel, func(i int) error {
				return benchEnrollOne(ctx, client, base, codes, csrs[i])
			}); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			csrs = csrs[*warmup:]
		}
		log.Info("enrolling", "enrollments", *n, "parallel", *parallel, "url", base)
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		cpu0, groups0 := processCPU(), s.db.GroupStats()
		lat, elapsed, err := runParallel(*n, *parallel, func(i int) error {
			return benchEnrollOne(ctx, client, base, codes, csrs[i])
		})
		groups := s.db.GroupStats()
		if err := errors.Join(err, stopProfile()); err != nil {
			return err
		}
		rep.CPUms = ms(processCPU()-cpu0) / float64(*n)
		rep.CPUs = runtime.GOMAXPROCS(0)
		if commits := groups.Commits - groups0.Commits; commits > 0 {
			rep.CommitsPerEnrollment = float64(commits) / float64(*n)
			rep.CallersPerCommit = float64(groups.Calls-groups0.Calls) / float64(commits)
		}
		rep.GroupBusyShare = (groups.Busy - groups0.Busy).Seconds() / elapsed.Seconds()
		rep.GroupWaitMS = ms(groups.Wait-groups0.Wait) / float64(*n)
		rep.PerSecond = float64(*n) / elapsed.Seconds()
		rep.P50ms, rep.P99ms = percentileMS(lat, 50), percentileMS(lat, 99)

		cpu0 = processCPU()
		_, elapsed, err = runParallel(*n, *parallel, func(i int) error {
			_, err := authority.ca.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: issueCSRs[i], Verified: benchApplicant, Actor: "sanad bench enroll"})
			return err
		})
		if err != nil {
			return err
		}
		rep.IssueCPUms = ms(processCPU()-cpu0) / float64(*n)
		rep.IssuePerSecond = float64(*n) / elapsed.Seconds()
		return printReport(cmd.OutOrStdout(), *asJSON, rep, func(w io.Writer) {
			fmt.Fprintf(w, "sanad bench enroll: %d %s enrollments through the REST API, %d in parallel, %s (after %d untimed)\n", rep.Enrollments, rep.Profile, rep.Parallel, rep.Database, rep.Warmup)
			fmt.Fprintf(w, "  enrolled   %.0f complete enrollments/s (enroll, prove, issued; latency p50 %.1f ms, p99 %.1f ms)\n", rep.PerSecond, rep.P50ms, rep.P99ms)
			if rep.CPUms > 0 { // 0: the process's CPU time could not be read
				fmt.Fprintf(w, "  cpu        %.2f ms per enrollment, client included (%d CPUs: at most %.0f/s with nothing else on them)\n", rep.CPUms, rep.CPUs, float64(rep.CPUs)*1000/rep.CPUms)
			}
			fmt.Fprintf(w, "  commits    %.2f per enrollment, %.1f callers each (store group commits)\n", rep.CommitsPerEnrollment, rep.CallersPerCommit)
			fmt.Fprintf(w, "             their transactions ran %.0f %% of the time; an enrollment's writes spent %.1f ms in them, queued and committing\n", 100*rep.GroupBusyShare, rep.GroupWaitMS)
			fmt.Fprintf(w, "  ca.Issue   %.0f certificates/s alone, same run (%.2f ms CPU each)\n", rep.IssuePerSecond, rep.IssueCPUms)
		})
	}
	return cmd
}

// benchApplicantJSON is a sample registry citizen applying for the auto
// profile.
const benchApplicantJSON = `{"kind":"person","country":"KZ","national_id":"880312448217","given_name":"Aigerim","family_name":"Sadykova","birth_date":"1988-03-12"}`

// benchEnrollOne is one applicant's whole flow over HTTP.
func benchEnrollOne(ctx context.Context, client *http.Client, base string, codes *memoryNotifier, csr []byte) error {
	csrJSON, _ := json.Marshal(string(csr))
	body := `{"profile":"citizen-auth","applicant":` + benchApplicantJSON + `,"csr":` + string(csrJSON) + `}`
	var e struct{ ID, State string }
	if err := postJSON(ctx, client, base+"/api/v1/enrollments", body, http.StatusCreated, &e); err != nil {
		return err
	}
	code, ok := codes.codes.LoadAndDelete(e.ID)
	if !ok {
		return fmt.Errorf("enrollment %s: no code was sent", e.ID)
	}
	if err := postJSON(ctx, client, base+"/api/v1/enrollments/"+e.ID+"/proof", `{"code":"`+code.(string)+`"}`, http.StatusOK, &e); err != nil {
		return err
	}
	if e.State != "issued" {
		return fmt.Errorf("enrollment %s is %s after its proof", e.ID, e.State)
	}
	return nil
}

func postJSON(ctx context.Context, client *http.Client, url, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, raw)
	}
	return json.Unmarshal(raw, out)
}
