package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/internal/status"
	"github.com/sanadpki/sanad/internal/store"
)

// ocspLoad is one load run's result.
type ocspLoad struct {
	Target     string  `json:"target"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"requests_per_second"`
	P50ms      float64 `json:"latency_p50_ms"`
	P99ms      float64 `json:"latency_p99_ms"`
	P999ms     float64 `json:"latency_p999_ms"`
	BodyBytes  int     `json:"body_bytes,omitempty"`
	Statuses   string  `json:"statuses,omitempty"`
	Connection int     `json:"connections"`
	// The raw measurements of the built-in generator, so that rounds can
	// be merged: latencies and answers by status code.
	lat      []time.Duration
	statuses map[int]int64
}

// summarize is the result of requests answered over elapsed, with their
// latencies (sorted here) and statuses.
func summarize(name string, requests, errs int64, elapsed time.Duration, lat []time.Duration, statuses map[int]int64, conns int) ocspLoad {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p/100)].Microseconds()) / 1000
	}
	var st []string
	for code, count := range statuses {
		st = append(st, fmt.Sprintf("%d×%d", count, code))
	}
	slices.Sort(st)
	return ocspLoad{Target: name, Requests: requests, Errors: errs, Seconds: elapsed.Seconds(),
		PerSecond: float64(requests) / elapsed.Seconds(), P50ms: pct(50), P99ms: pct(99), P999ms: pct(99.9),
		Statuses: strings.Join(st, " "), Connection: conns, lat: lat, statuses: statuses}
}

// mergeRounds is one result for the rounds of one target.
func mergeRounds(rounds []ocspLoad) ocspLoad {
	if len(rounds) == 1 {
		return rounds[0]
	}
	var requests, errs int64
	var seconds float64
	var lat []time.Duration
	statuses := map[int]int64{}
	for _, r := range rounds {
		requests, errs, seconds = requests+r.Requests, errs+r.Errors, seconds+r.Seconds
		lat = append(lat, r.lat...)
		for k, v := range r.statuses {
			statuses[k] += v
		}
	}
	m := summarize(rounds[0].Target, requests, errs, time.Duration(seconds*float64(time.Second)), lat, statuses, rounds[0].Connection)
	m.BodyBytes = rounds[0].BodyBytes
	return m
}

// ocspReport is what `sanad bench ocsp` measured.
type ocspReport struct {
	Certificates int        `json:"certificates"`
	SeedSeconds  float64    `json:"seed_seconds,omitempty"`
	LoadSeconds  float64    `json:"preload_seconds,omitempty"`
	HeapMB       float64    `json:"heap_inuse_mb_after_preload,omitempty"`
	RSSMB        float64    `json:"rss_mb_after_preload,omitempty"`
	Spread       string     `json:"spread"`
	PostShare    float64    `json:"post_share"`
	Runs         []ocspLoad `json:"runs"`
	// Ratio is Sanad's requests/s over the bare handler's, measured in the
	// same run; P99Ratio the same for p99 latency.
	Ratio    float64 `json:"ratio_to_bare,omitempty"`
	P99Ratio float64 `json:"p99_ratio_to_bare,omitempty"`
	// RoundRatios are the ratios of each round (--rounds).
	RoundRatios []float64 `json:"round_ratios,omitempty"`
	// Peers are Sanad's requests/s over each peer's, same run.
	Peers []peerRatio `json:"peers,omitempty"`
}

func newBenchOCSPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ocsp",
		Short: "Load an OCSP responder: Sanad's over a seeded store beside a bare net/http handler, or any URL",
		Long: `Without --url: seeds a throw-away SQLite store (in a temporary directory,
never the configured one) with N certificates and their pre-signed OCSP
responses, signed by a throw-away software CA made for the run; starts
Sanad's responder over it and a bare net/http handler that returns a fixed
body of the same size (the machine's ceiling) on loopback; and loads both
in turn with the same generator, printing requests/s, latency percentiles
and the ratio.

With --url: loads that responder, asking about the serials in
--serials-file (hex, one a line) of the CA in --issuer.

The generator speaks HTTP/1.1 with keep-alive over --connections
connections, picks serials with a Zipf spread (a few certificates are
checked far more often than most; --spread uniform to spread evenly) and
sends --post of the requests as POST, the rest as GET.`,
		Args: cobra.NoArgs,
	}
	n := cmd.Flags().IntP("certificates", "n", 100_000, "certificates to seed the store with")
	conns := cmd.Flags().IntP("connections", "c", 64, "connections kept open")
	dur := cmd.Flags().DurationP("duration", "d", 10*time.Second, "how long to load each target")
	warm := cmd.Flags().Duration("warmup", 2*time.Second, "load before measuring, per target")
	post := cmd.Flags().Float64("post", 0, "share of requests sent as POST (0 to 1)")
	spread := cmd.Flags().String("spread", "zipf", "how serials are picked: zipf or uniform")
	distinct := cmd.Flags().Int("serials", 100_000, "distinct serials asked about (at most --certificates)")
	target := cmd.Flags().String("url", "", "load this OCSP responder instead (with --issuer and --serials-file)")
	issuerPEM := cmd.Flags().String("issuer", "", "with --url: the issuing CA certificate (PEM)")
	serialsFile := cmd.Flags().String("serials-file", "", "with --url: serials to ask about, hex, one a line")
	bareOnly := cmd.Flags().Bool("bare", true, "without --url: also load the bare handler, for the ratio")
	rounds := cmd.Flags().Int("rounds", 5, "with the bare handler: alternate Sanad and the bare handler this many times, each for duration/rounds, so that both see the same machine")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cpuProfile := cmd.Flags().String("cpuprofile", "", "write a CPU profile of the load on Sanad's responder to this file")
	generator := cmd.Flags().String("generator", "builtin", "load generator: builtin (Go, GET and POST) or wrk (C, GET only; apt-get install -y wrk)")
	peers := cmd.Flags().StringSlice("peers", nil, "also load, in the same run, these responders over the same certificates: openssl (openssl ocsp -index) and cfssl (cfssl ocspserve, from PATH or ~/go/bin)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *conns < 1 || *dur <= 0 || *post < 0 || *post > 1 || *n < 1 || *distinct < 1 {
			return usagef("--connections, --certificates and --serials must be at least 1, --duration positive, --post within 0..1")
		}
		if *spread != "zipf" && *spread != "uniform" {
			return usagef("--spread is zipf or uniform")
		}
		if *generator != "builtin" && *generator != "wrk" {
			return usagef("--generator is builtin or wrk")
		}
		if *generator == "wrk" && *post > 0 {
			return usagef("--generator wrk sends GET requests only; --post needs the builtin generator")
		}
		ctx := cmd.Context()
		log := newLogger(config.Log{Level: "info", Format: "text"}, cmd.ErrOrStderr())
		rep := ocspReport{Spread: *spread, PostShare: *post}
		gen := loadGen{conns: *conns, warmup: *warm, duration: *dur, post: *post, zipf: *spread == "zipf"}
		// load runs the chosen generator; wrk needs a directory for its
		// script and paths, made below for the self-contained mode.
		var wrkDir string
		loadWith := func(gen loadGen, name, addr, path string, reqs [][]byte) (ocspLoad, error) {
			if *generator == "wrk" {
				dir := wrkDir
				if dir == "" {
					d, err := os.MkdirTemp("", "sanad-bench-wrk-")
					if err != nil {
						return ocspLoad{}, err
					}
					defer os.RemoveAll(d)
					dir = d
				}
				return gen.wrkRun(ctx, name, addr, path, reqs, dir)
			}
			return gen.run(ctx, name, addr, path, reqs)
		}
		load := func(name, addr, path string, reqs [][]byte) (ocspLoad, error) {
			return loadWith(gen, name, addr, path, reqs)
		}
		if *target != "" {
			if *issuerPEM == "" || *serialsFile == "" {
				return usagef("--url needs --issuer and --serials-file")
			}
			reqs, err := requestsFromFiles(*issuerPEM, *serialsFile)
			if err != nil {
				return err
			}
			u, err := splitURL(*target)
			if err != nil {
				return usagef("--url: %v", err)
			}
			rep.Certificates = len(reqs)
			res, err := load("url", u.addr, u.path, reqs)
			if err != nil {
				return err
			}
			rep.Runs = append(rep.Runs, res)
			return printOCSPReport(cmd.OutOrStdout(), *asJSON, rep)
		}

		dir, err := os.MkdirTemp("", "sanad-bench-ocsp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		wrkDir = dir
		db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "bench.db")})
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		log.Info("seeding a throw-away store", "certificates", *n, "dir", dir)
		t0 := time.Now()
		seed, err := seedOCSP(ctx, db, *n, min(*distinct, *n), len(*peers) > 0)
		if err != nil {
			return err
		}
		rep.Certificates, rep.SeedSeconds = *n, time.Since(t0).Seconds()

		t0 = time.Now()
		responder, err := status.New(ctx, db, status.Config{CacheSize: *n, Preload: true}, log, time.Now)
		if err != nil {
			return err
		}
		if err := responder.Sync(ctx); err != nil {
			return err
		}
		rep.LoadSeconds = time.Since(t0).Seconds()
		rep.HeapMB, rep.RSSMB = memoryMB()

		serveCtx, stop := context.WithCancel(ctx)
		defer stop()
		mux := http.NewServeMux()
		responder.RegisterRoutes(mux)
		sanadAddr, err := serveLoopback(serveCtx, responder.Handler(mux), log)
		if err != nil {
			return err
		}
		// The answers must be the right ones before their speed counts.
		if err := checkAnswers(sanadAddr, "/ocsp", seed.requests, 200); err != nil {
			return err
		}
		// The ceiling: a handler that returns a fixed body of the same
		// size, with the same content type, and does nothing else.
		var bareAddr string
		if *bareOnly {
			body := make([]byte, seed.bodySize)
			bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Content-Type"] = []string{"application/ocsp-response"}
				_, _ = w.Write(body)
			})
			if bareAddr, err = serveLoopback(serveCtx, bare, log); err != nil {
				return err
			}
		}
		// Sanad and the bare handler take turns, round after round: a
		// shared machine's speed drifts over a minute by more than the
		// difference measured (72–88 % in single back-to-back runs).
		n := 1
		if *bareOnly && *generator == "builtin" {
			n = max(1, *rounds)
		}
		round := gen
		round.duration = *dur / time.Duration(n)
		var sanadRounds, bareRounds []ocspLoad
		for r := range n {
			if r > 0 {
				round.warmup = min(*warm, time.Second)
			}
			log.Info("loading Sanad's responder", "addr", sanadAddr, "connections", *conns, "duration", round.duration, "round", r+1, "of", n)
			stopProfile, err := startCPUProfile(*cpuProfile)
			if err != nil {
				return err
			}
			res, err := loadWith(round, "sanad", sanadAddr, "/ocsp", seed.requests)
			if err := errors.Join(err, stopProfile()); err != nil {
				return err
			}
			*cpuProfile = "" // the first round's profile
			res.BodyBytes = seed.bodySize
			sanadRounds = append(sanadRounds, res)
			if !*bareOnly {
				continue
			}
			log.Info("loading the bare handler", "addr", bareAddr, "round", r+1, "of", n)
			b, err := loadWith(round, "bare net/http", bareAddr, "/ocsp", seed.requests)
			if err != nil {
				return err
			}
			if b.Requests == 0 {
				// The round's ratio would be infinite, which JSON cannot
				// carry: a round this short on a machine this busy
				// measured nothing.
				return fmt.Errorf("bare net/http: no request completed in round %d of %d (%s); give a longer --duration", r+1, n, round.duration)
			}
			b.BodyBytes = seed.bodySize
			bareRounds = append(bareRounds, b)
			rep.RoundRatios = append(rep.RoundRatios, res.PerSecond/b.PerSecond)
		}
		res := mergeRounds(sanadRounds)
		rep.Runs = append(rep.Runs, res)
		if *bareOnly {
			b := mergeRounds(bareRounds)
			rep.Runs = append(rep.Runs, b)
			rep.Ratio = res.PerSecond / b.PerSecond
			if b.P99ms > 0 {
				rep.P99Ratio = res.P99ms / b.P99ms
			}
		}
		for _, peer := range *peers {
			addr, stopPeer, err := startPeer(serveCtx, log, peer, seed, dir)
			if err != nil {
				return fmt.Errorf("peer %s: %w", peer, err)
			}
			err = checkAnswers(addr, "/", seed.requests, 20)
			if err != nil {
				// openssl ocsp has once, on a loaded CI machine, sent one
				// answer inside another; a second look tells a peer that
				// is set up wrong from one that stumbled.
				log.Warn("peer answered wrong, asking again", "peer", peer, "err", err)
				time.Sleep(time.Second)
				err = checkAnswers(addr, "/", seed.requests, 20)
			}
			if err != nil {
				stopPeer()
				return fmt.Errorf("peer %s: %w", peer, err)
			}
			log.Info("loading a peer", "peer", peer, "addr", addr)
			p, err := load(peer, addr, "/", seed.requests)
			stopPeer()
			if err == nil && p.Requests == 0 {
				// No ratio to give (it would be infinite): a peer that
				// answered nothing in the run stopped answering.
				err = errors.New("no request completed")
			}
			if err != nil {
				// A peer that stops answering under load (openssl ocsp does
				// under wrk) is a finding, not the end of the run.
				log.Warn("peer failed under load", "peer", peer, "err", err)
				rep.Runs = append(rep.Runs, ocspLoad{Target: peer, Statuses: "failed under load: " + firstLine(err.Error())})
				continue
			}
			p.BodyBytes = seed.bodySize
			rep.Runs = append(rep.Runs, p)
			rep.Peers = append(rep.Peers, peerRatio{Peer: peer, Ratio: res.PerSecond / p.PerSecond})
		}
		return printOCSPReport(cmd.OutOrStdout(), *asJSON, rep)
	}
	return cmd
}

// peerRatio is Sanad's requests/s over a peer's, in the same run.
type peerRatio struct {
	Peer  string  `json:"peer"`
	Ratio float64 `json:"sanad_over_peer"`
}

// startPeer starts another OCSP responder over the seeded certificates on
// a free loopback port: openssl ocsp -index (signs every answer with the
// throw-away signer key) or cfssl ocspserve (serves the same pre-signed
// responses). It returns the address and a stop function.
//
// Another process may take the port between freePort finding it and the
// peer binding it: a peer that exits before it listens is started again on
// another port, up to three tries.
func startPeer(ctx context.Context, log *slog.Logger, peer string, seed ocspSeed, dir string) (string, func(), error) {
	addr, stop, err := startPeerOnce(ctx, peer, seed, dir)
	for try := 1; errors.Is(err, errPeerExited) && try < 3; try++ {
		log.Warn("peer exited before it listened; starting it on another port", "peer", peer, "err", err)
		addr, stop, err = startPeerOnce(ctx, peer, seed, dir)
	}
	return addr, stop, err
}

// startPeerOnce is one try of startPeer.
func startPeerOnce(ctx context.Context, peer string, seed ocspSeed, dir string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	writePEM := func(name, typ string, der []byte) (string, error) {
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	var cmd *exec.Cmd
	// bound says, from the peer's output, that it holds the port: a dial
	// alone may reach another process that took the port first.
	// OpenSSL 3 prints its ACCEPT line once bound; 1.1 prints nothing, and
	// one that could not bind has exited within a few seconds.
	started := time.Now()
	bound := func(string) bool { return true }
	switch peer {
	case "openssl":
		bound = func(out string) bool { return strings.Contains(out, "ACCEPT ") || time.Since(started) > 3*time.Second }
		caPath, err := writePEM("ca.pem", "CERTIFICATE", seed.ca.Raw)
		if err != nil {
			return "", nil, err
		}
		signerPath, err := writePEM("signer.pem", "CERTIFICATE", seed.signer.Raw)
		if err != nil {
			return "", nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(seed.signerKey)
		if err != nil {
			return "", nil, err
		}
		keyPath, err := writePEM("signer.key", "PRIVATE KEY", keyDER) // a throw-away key of the benchmark
		if err != nil {
			return "", nil, err
		}
		// The CA database format: status, expiry, revocation, serial, file, subject.
		var index strings.Builder
		expiry := seed.notAfter.UTC().Format("060102150405Z")
		for _, sn := range seed.serials {
			fmt.Fprintf(&index, "V\t%s\t\t%X\tunknown\t/CN=bench %X\n", expiry, sn, sn) // subjects unique, as openssl's database wants
		}
		indexPath := filepath.Join(dir, "index.txt")
		if err := os.WriteFile(indexPath, []byte(index.String()), 0o600); err != nil {
			return "", nil, err
		}
		// -port takes a number (all interfaces); -multi 2 gives it both
		// cores, as Sanad has.
		cmd = peerCommand(ctx, "openssl", "ocsp", "-index", indexPath, "-port", strconv.Itoa(port), "-CA", caPath,
			"-rsigner", signerPath, "-rkey", keyPath, "-ignore_err", "-multi", strconv.Itoa(runtime.GOMAXPROCS(0)))
	case "cfssl":
		bin, err := exec.LookPath("cfssl")
		if err != nil {
			home, _ := os.UserHomeDir()
			bin = filepath.Join(home, "go", "bin", "cfssl")
			if _, err := os.Stat(bin); err != nil {
				return "", nil, errors.New("cfssl is not installed (GOTOOLCHAIN=local go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5)")
			}
		}
		var lines strings.Builder
		for _, der := range seed.responses {
			lines.WriteString(base64.StdEncoding.EncodeToString(der))
			lines.WriteByte('\n')
		}
		respPath := filepath.Join(dir, "responses.txt")
		if err := os.WriteFile(respPath, []byte(lines.String()), 0o600); err != nil {
			return "", nil, err
		}
		cmd = peerCommand(ctx, bin, "ocspserve", "-address", "127.0.0.1", "-port", strconv.Itoa(port), "-responses", respPath, "-loglevel", "5")
	default:
		return "", nil, fmt.Errorf("unknown peer %q (openssl or cfssl)", peer)
	}
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that stopping it stops the children it
	// forks (openssl ocsp -multi).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-exited }
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			// Another process may have taken the port between freePort
			// and the peer binding it: the caller tries another.
			return "", nil, fmt.Errorf("%w (%v): %s", errPeerExited, waitErr, out.String())
		default:
		}
		if bound(out.String()) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return addr, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("did not listen within 60 s: %s", out.String())
		}
	}
}

// errPeerExited is a peer that stopped before it listened.
var errPeerExited = errors.New("exited before it listened")

// syncBuf collects a child's output for an error message.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 4096 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func printOCSPReport(w io.Writer, asJSON bool, rep ocspReport) error {
	return printReport(w, asJSON, rep, func(w io.Writer) {
		fmt.Fprintf(w, "sanad bench ocsp: %d certificates in the store, %s spread, %.0f %% POST\n", rep.Certificates, rep.Spread, 100*rep.PostShare)
		if rep.SeedSeconds > 0 {
			fmt.Fprintf(w, "  store      seeded in %.1f s, preloaded in %.1f s; heap %.0f MB, RSS %.0f MB after preload\n",
				rep.SeedSeconds, rep.LoadSeconds, rep.HeapMB, rep.RSSMB)
		}
		for _, r := range rep.Runs {
			p999 := "" // wrk does not report it
			if r.P999ms > 0 {
				p999 = fmt.Sprintf("  p99.9 %.2f ms", r.P999ms)
			}
			fmt.Fprintf(w, "  %-20s %8.0f requests/s  p50 %.2f ms  p99 %.2f ms%s  (%d requests, %d errors, %d connections; %s)\n",
				r.Target, r.PerSecond, r.P50ms, r.P99ms, p999, r.Requests, r.Errors, r.Connection, r.Statuses)
		}
		if rep.Ratio > 0 {
			fmt.Fprintf(w, "  ratio          %.1f %% of the bare handler's requests/s; p99 %.2f× the bare handler's\n", 100*rep.Ratio, rep.P99Ratio)
		}
		if len(rep.RoundRatios) > 1 {
			var rs []string
			for _, r := range rep.RoundRatios {
				rs = append(rs, fmt.Sprintf("%.1f", 100*r))
			}
			fmt.Fprintf(w, "  rounds         %s %% (Sanad and the bare handler alternating)\n", strings.Join(rs, ", "))
		}
		for _, p := range rep.Peers {
			fmt.Fprintf(w, "  vs %-11s Sanad answers %.1f× the requests/s\n", p.Peer, p.Ratio)
		}
	})
}

// memoryMB is the Go heap in use (after a collection) and the process's
// resident set, in MB.
func memoryMB() (heap, rss float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = float64(ms.HeapInuse) / (1 << 20)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss = kb / 1024
			}
		}
	}
	return heap, rss
}

// serveLoopback serves h on 127.0.0.1 with the production server settings
// until ctx ends, and returns the address.
func serveLoopback(ctx context.Context, h http.Handler, log *slog.Logger) (string, error) {
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- api.Serve(ctx, "127.0.0.1:0", h, api.Limits{Shutdown: time.Second}, log, func(a net.Addr) { addrc <- a.String() })
	}()
	select {
	case a := <-addrc:
		return a, nil
	case err := <-errc:
		return "", err
	}
}

// ocspSeed is a seeded store's requests, one per distinct serial asked
// about, and the size of a response.
type ocspSeed struct {
	requests [][]byte
	bodySize int
	// For the peers: the throw-away CA and signer, and every serial with
	// its response.
	ca, signer *x509.Certificate
	signerKey  *ecdsa.PrivateKey
	serials    [][]byte
	responses  [][]byte
	notAfter   time.Time
}

// seedOCSP fills db with n certificate rows of a throw-away software CA
// and a pre-signed OCSP response for each, and returns requests for the
// first distinct of them (and, with keepResponses, every serial and
// response, for the peers). The CA exists only for the run: nothing here
// touches the HSM or the configured store.
func seedOCSP(ctx context.Context, db *store.DB, n, distinct int, keepResponses bool) (ocspSeed, error) {
	now := time.Now().UTC().Truncate(time.Second)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ocspSeed{}, err
	}
	caCert, err := benchCert(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Sanad bench issuing CA (throw-away)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, caKey.Public(), caKey)
	if err != nil {
		return ocspSeed{}, err
	}
	signerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ocspSeed{}, err
	}
	signerCert, err := benchCert(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Sanad bench OCSP signer (throw-away)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, caCert, signerKey.Public(), caKey)
	if err != nil {
		return ocspSeed{}, err
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutIssuer(ctx, store.Issuer{ID: "bench", Name: caCert.Subject.CommonName, Role: "issuing",
			CertificateDER: caCert.Raw, KeyLabel: "none: a software key of the benchmark", CreatedAt: now})
	}); err != nil {
		return ocspSeed{}, err
	}

	const batch = 1000
	var (
		seed     ocspSeed
		mu       sync.Mutex
		next     atomic.Int64
		firstErr error
	)
	// batchOf makes the rows of serials start..end-1 and the requests of
	// those below distinct.
	batchOf := func(start, end int) (certs []store.Certificate, resps []store.OCSPResponse, reqs [][]byte, err error) {
		for i := start; i < end; i++ {
			serial, err := ca.NewSerial(now)
			if err != nil {
				return nil, nil, nil, err
			}
			der, err := ocsp.CreateResponse(caCert, signerCert, ocsp.Response{SerialNumber: serial, Status: ocsp.Good,
				ThisUpdate: now, NextUpdate: now.Add(4 * 24 * time.Hour), Certificate: signerCert}, signerKey)
			if err != nil {
				return nil, nil, nil, err
			}
			sb := serial.Bytes()
			certs = append(certs, store.Certificate{IssuerID: "bench", Serial: sb, Profile: "bench", NotBefore: now,
				NotAfter: now.AddDate(1, 0, 0), TBS: []byte{0x30, 0x00}, Status: store.StatusGood, CreatedAt: now})
			resps = append(resps, store.OCSPResponse{IssuerID: "bench", Serial: sb, DER: der, ThisUpdate: now,
				NextUpdate: now.Add(4 * 24 * time.Hour), UpdatedAt: now})
			if i < distinct {
				req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, caCert, nil)
				if err != nil {
					return nil, nil, nil, err
				}
				reqs = append(reqs, req)
			}
		}
		return certs, resps, reqs, db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertCertificateIntents(ctx, certs); err != nil {
				return err
			}
			return tx.PutOCSPResponses(ctx, resps)
		})
	}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				start := int(next.Add(batch)) - batch
				if start >= n || ctx.Err() != nil {
					return
				}
				_, resps, reqs, err := batchOf(start, min(start+batch, n))
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				seed.requests = append(seed.requests, reqs...)
				for _, r := range resps {
					if keepResponses { // for the peers only: it weighs on the heap measured
						seed.serials = append(seed.serials, r.Serial)
						seed.responses = append(seed.responses, r.DER)
					}
				}
				if seed.bodySize == 0 && len(resps) > 0 {
					seed.bodySize = len(resps[0].DER)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return ocspSeed{}, fmt.Errorf("seed: %w", firstErr)
	}
	seed.ca, seed.signer, seed.signerKey, seed.notAfter = caCert, signerCert, signerKey, now.AddDate(1, 0, 0)
	return seed, ctx.Err()
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func benchCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// requestsFromFiles builds requests for the serials in serialsFile of the
// CA in issuerPEM.
func requestsFromFiles(issuerPEM, serialsFile string) ([][]byte, error) {
	pemBytes, err := os.ReadFile(issuerPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", issuerPEM)
	}
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	list, err := os.ReadFile(serialsFile)
	if err != nil {
		return nil, err
	}
	var reqs [][]byte
	for line := range strings.SplitSeq(string(list), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "0x")
		if line == "" {
			continue
		}
		s, ok := new(big.Int).SetString(line, 16)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a hex serial", serialsFile, line)
		}
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: s}, issuer, nil)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%s: no serials", serialsFile)
	}
	return reqs, nil
}

type targetURL struct{ addr, path string }

func splitURL(raw string) (targetURL, error) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return targetURL{}, errors.New("only http:// URLs (the generator speaks plain HTTP/1.1)")
	}
	host, path, _ := strings.Cut(rest, "/")
	if !strings.Contains(host, ":") {
		host += ":80"
	}
	return targetURL{addr: host, path: "/" + strings.TrimSuffix(path, "/")}, nil
}

// loadGen is the built-in load generator: HTTP/1.1 with keep-alive over a
// fixed number of connections, each sending a request and reading the
// answer in turn, as wrk does. It is a few hundred lines of plain TCP, not
// net/http's client, so that it costs the machine less than the server it
// loads.
type loadGen struct {
	conns            int
	warmup, duration time.Duration
	post             float64
	zipf             bool
}

func (g loadGen) run(ctx context.Context, name, addr, path string, reqs [][]byte) (ocspLoad, error) {
	// Every request's bytes, built before the clock starts.
	gets := make([][]byte, len(reqs))
	posts := make([][]byte, len(reqs))
	for i, der := range reqs {
		gets[i] = []byte("GET " + strings.TrimSuffix(path, "/") + "/" + base64.StdEncoding.EncodeToString(der) + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
		posts[i] = append([]byte("POST "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/ocsp-request\r\nContent-Length: "+
			strconv.Itoa(len(der))+"\r\n\r\n"), der...)
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		requests  atomic.Int64
		errs      atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		statuses  = map[int]int64{}
		firstErr  error
	)
	// No connection outlives the run by more than ten seconds: a target
	// that stops answering (openssl ocsp has been seen spinning under load)
	// fails its run instead of hanging the benchmark.
	deadline := time.Now().Add(g.warmup + g.duration + 10*time.Second)
	dial := func() (net.Conn, *bufio.Reader, error) {
		conn, br, err := dialLoad(addr)
		if err == nil {
			err = conn.SetDeadline(deadline)
		}
		return conn, br, err
	}
	var wg sync.WaitGroup
	for c := range g.conns {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(c)+1, uint64(time.Now().UnixNano())))
			var zipf *mrand.Zipf
			if g.zipf && len(reqs) > 1 {
				zipf = mrand.NewZipf(rng, 1.1, 1, uint64(len(reqs)-1))
			}
			var mine []time.Duration
			myStatus := map[int]int64{}
			conn, br, err := dial()
			for err == nil && !stop.Load() && ctx.Err() == nil {
				i := rng.IntN(len(reqs))
				if zipf != nil {
					i = int(zipf.Uint64())
				}
				req := gets[i]
				if g.post > 0 && rng.Float64() < g.post {
					req = posts[i]
				}
				t0 := time.Now()
				var (
					code     int
					closeNow bool
				)
				code, closeNow, err = roundTrip(conn, br, req)
				if err != nil {
					break
				}
				if closeNow {
					// A server that answers one request per connection
					// (openssl ocsp): its redial counts in the latency.
					conn.Close()
					if conn, br, err = dial(); err != nil {
						break
					}
				}
				if measuring.Load() {
					mine = append(mine, time.Since(t0))
					myStatus[code]++
					requests.Add(1)
				}
			}
			if conn != nil {
				conn.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			for k, v := range myStatus {
				statuses[k] += v
			}
			if err != nil && !stop.Load() {
				errs.Add(1)
				firstErr = cmpErr(firstErr, err)
			}
		})
	}
	time.Sleep(g.warmup)
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(g.duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if firstErr != nil && requests.Load() == 0 {
		return ocspLoad{}, fmt.Errorf("load %s: %w", name, firstErr)
	}
	return summarize(name, requests.Load(), errs.Load(), elapsed, lat, statuses, g.conns), nil
}

// checkAnswers asks for up to n of reqs over HTTP GET (path, then the
// base64 request) and checks each
// answer is a good response for the serial asked about.
// checkClient gives up on a responder that does not answer.
var checkClient = &http.Client{Timeout: 10 * time.Second}

func checkAnswers(addr, path string, reqs [][]byte, n int) error {
	for i, der := range reqs[:min(n, len(reqs))] {
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			return err
		}
		resp, err := checkClient.Get("http://" + addr + strings.TrimSuffix(path, "/") + "/" + base64.StdEncoding.EncodeToString(der))
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		r, err := ocsp.ParseResponse(body, nil)
		if err != nil || r.Status != ocsp.Good || r.SerialNumber.Cmp(req.SerialNumber) != 0 {
			return fmt.Errorf("request %d: the responder's answer (HTTP %d, %d bytes, starting %q) is not good for serial %x: %v",
				i, resp.StatusCode, len(body), body[:min(len(body), 48)], req.SerialNumber, err)
		}
	}
	return nil
}

func dialLoad(addr string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return conn, bufio.NewReaderSize(conn, 8<<10), nil
}

// roundTrip writes one request and reads its response (status line,
// headers, Content-Length body), returning the status code and whether the
// server closes the connection after it (HTTP/1.0, or Connection: close).
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (int, bool, error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	closing := line[7] == '0'
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, err
	}
	length := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(h) <= 2 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, err
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, false, errors.New("response without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		return 0, false, err
	}
	return code, closing, nil
}

// wrkRun loads addr with wrk (github.com/wg/wrk, C, epoll): the issue's
// reference generator, cheaper than the built-in one, so that the
// ceiling it finds is nearer the machine's. The paths are the GET requests
// in the order the built-in generator would pick them (the Zipf or uniform
// spread, sampled ahead), cycled by a Lua script.
func (g loadGen) wrkRun(ctx context.Context, name, addr, path string, reqs [][]byte, dir string) (ocspLoad, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return ocspLoad{}, errors.New("wrk is not installed (apt-get install -y wrk)")
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	var zipf *mrand.Zipf
	if g.zipf && len(reqs) > 1 {
		zipf = mrand.NewZipf(rng, 1.1, 1, uint64(len(reqs)-1))
	}
	var paths strings.Builder
	for range max(len(reqs), 200_000) {
		i := rng.IntN(len(reqs))
		if zipf != nil {
			i = int(zipf.Uint64())
		}
		paths.WriteString(strings.TrimSuffix(path, "/") + "/" + base64.StdEncoding.EncodeToString(reqs[i]) + "\n")
	}
	pathsFile := filepath.Join(dir, "wrk-paths.txt")
	if err := os.WriteFile(pathsFile, []byte(paths.String()), 0o600); err != nil {
		return ocspLoad{}, err
	}
	script := filepath.Join(dir, "wrk.lua")
	lua := `local paths = {}
for line in io.lines("` + pathsFile + `") do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
`
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return ocspLoad{}, err
	}
	// The warm-up, then the measured run.
	args := func(d time.Duration) []string {
		return []string{"-t", strconv.Itoa(runtime.GOMAXPROCS(0)), "-c", strconv.Itoa(g.conns), "-d", strconv.Itoa(int(max(d, time.Second)/time.Second)) + "s",
			"--latency", "-s", script, "http://" + addr}
	}
	if g.warmup > 0 {
		if out, err := peerCommand(ctx, bin, args(g.warmup)...).CombinedOutput(); err != nil {
			return ocspLoad{}, fmt.Errorf("wrk: %v: %s", err, out)
		}
	}
	out, err := peerCommand(ctx, bin, args(g.duration)...).CombinedOutput()
	if err != nil {
		return ocspLoad{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(name, string(out), g.conns)
}

// parseWrk reads wrk's report: requests/s, the 50 % and 99 % latencies,
// the request count and the non-2xx/3xx and socket errors.
func parseWrk(name, out string, conns int) (ocspLoad, error) {
	r := ocspLoad{Target: name + " (wrk)", Connection: conns}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.PerSecond, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.P50ms = wrkMS(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.P99ms = wrkMS(f[1])
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			r.Requests, _ = strconv.ParseInt(f[0], 10, 64)
			if d, err := time.ParseDuration(strings.TrimSuffix(f[3], ",")); err == nil {
				r.Seconds = d.Seconds()
			}
		case len(f) >= 2 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			r.Errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for _, part := range f[2:] {
				if n, err := strconv.ParseInt(strings.TrimSuffix(part, ","), 10, 64); err == nil {
					r.Errors += n
				}
			}
		}
	}
	if r.PerSecond == 0 {
		return r, fmt.Errorf("wrk: no Requests/sec in its output:\n%s", out)
	}
	r.Statuses = "wrk"
	return r, nil
}

// wrkMS converts a wrk latency ("812.00us", "1.20ms", "1.02s") to ms.
func wrkMS(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 0.001}, {"ms", 1}, {"s", 1000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f * u.ms
		}
	}
	return 0
}

// peerCommand is a command of another program the benchmark runs (a peer
// responder, wrk), with this process's environment but Sanad's own
// variables (SANAD_*: the database DSN, perhaps a PIN): secrets are not
// handed to programs that have no use for them.
func peerCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = childEnv(os.Environ())
	return cmd
}

// childEnv is env without its SANAD_ variables.
func childEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "SANAD_") })
}
