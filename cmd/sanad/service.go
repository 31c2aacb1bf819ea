package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/internal/store"
)

// devConfigPath is where `sanad dev` keeps its configuration; the other
// commands use it when --config is not given, so they work right after
// `make run`.
const devConfigPath = "var/sanad.yaml"

// configFlag adds --config to cmd and returns a loader for it.
func configFlag(cmd *cobra.Command) func() (config.Config, error) { return configFlagIn(cmd.Flags()) }

// configFlagIn is configFlag in a given flag set: a command group's
// persistent flags, for its subcommands.
func configFlagIn(flags *pflag.FlagSet) func() (config.Config, error) {
	path := flags.String("config", "", "configuration file (default ./"+devConfigPath+" when it exists)")
	return func() (config.Config, error) {
		p := *path
		if p == "" {
			if _, err := os.Stat(devConfigPath); err != nil {
				return config.Config{}, usagef("--config is required (no ./%s: run `sanad dev` once, or pass a file)", devConfigPath)
			}
			p = devConfigPath
		}
		return config.Load(p, os.Getenv)
	}
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openConfiguredStore loads the configuration and opens its store
// (openStore), for commands that work on the database alone.
func openConfiguredStore(ctx context.Context, loadConfig func() (config.Config, error)) (config.Config, *store.DB, error) {
	cfg, err := loadConfig()
	if err != nil {
		return cfg, nil, err
	}
	db, err := openStore(ctx, cfg.Database)
	return cfg, db, err
}

// openStore opens the configured database and applies the embedded
// migrations.
func openStore(ctx context.Context, cfg config.Database) (*store.DB, error) {
	dsn, err := cfg.ConnString()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, store.Config{Driver: cfg.Driver, DSN: dsn, MaxOpenConns: cfg.MaxOpenConns})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// loadModule loads the configured PKCS#11 module. SoftHSM2 reads
// SOFTHSM2_CONF when the module initializes, so it is set first.
func loadModule(cfg config.HSM) (*hsm.Module, error) {
	if cfg.SoftHSMConf != "" {
		if err := os.Setenv("SOFTHSM2_CONF", cfg.SoftHSMConf); err != nil {
			return nil, err
		}
	}
	return hsm.LoadModule(cfg.Module)
}

// readPIN reads the token PIN from its file or environment variable. A PIN
// read from the environment is removed from the process's environment, so
// that no child inherits it and nothing reading os.Environ later sees it.
// The kernel's copy of the environment the process started with
// (/proc/<pid>/environ, readable by the same user and root) keeps it: only
// hsm.pin_file avoids that, which is why production configurations use it.
func readPIN(cfg config.HSM) (hsm.PIN, error) {
	if cfg.PINFile != "" {
		return hsm.PINFromFile(cfg.PINFile)
	}
	pin, err := hsm.PINFromEnv(cfg.PINEnv)
	if err != nil {
		return hsm.PIN{}, err
	}
	return pin, os.Unsetenv(cfg.PINEnv)
}

// openToken opens the configured token; refused, when set, is told when it
// refuses the PIN on logging in again (hsm.TokenConfig.PINRefused).
func openToken(ctx context.Context, m *hsm.Module, cfg config.HSM, refused func(error)) (*hsm.Token, error) {
	pin, err := readPIN(cfg)
	if err != nil {
		return nil, err
	}
	return m.OpenToken(ctx, hsm.TokenConfig{Label: cfg.TokenLabel, PIN: pin, MaxSessions: cfg.MaxSessions, PINRefused: refused})
}

// service is one running sanad process: its store, HSM token, audit log and
// HTTP endpoints. Later issues add the CA, RA and status roles to it.
type service struct {
	cfg      config.Config
	log      *slog.Logger
	db       *store.DB
	module   *hsm.Module
	token    *hsm.Token
	auditKey *hsm.Key
	audit    *audit.Log
	now      func() time.Time
	// loops run beside the HTTP server until it stops (the CA's
	// publisher, for one).
	loops []func(context.Context)
	// routes add the roles' APIs to the server's mux.
	routes []func(*http.ServeMux)
	// fronts wrap the whole handler, outermost last: for paths no mux
	// may clean (OCSP GET).
	fronts []func(http.Handler) http.Handler
	// checks are the roles' readiness checks, beside database and HSM.
	checks map[string]api.Check
	// collectors register the roles' metrics.
	collectors []func(prometheus.Registerer) error
}

// addCheck adds a readiness check of a role (see checks).
func (s *service) addCheck(name string, check api.Check) {
	if s.checks == nil {
		s.checks = map[string]api.Check{}
	}
	s.checks[name] = check
}

// close releases what the service holds, in reverse order of opening.
func (s *service) close() {
	if s.token != nil {
		s.token.Close()
	}
	if s.module != nil {
		s.module.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

// openService opens the store and the HSM token of cfg and finds the audit
// key. The caller closes it.
func openService(ctx context.Context, cfg config.Config, log *slog.Logger) (*service, error) {
	s, err := openKeylessService(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if s.module, err = loadModule(cfg.HSM); err != nil {
		s.close()
		return nil, err
	}
	if s.token, err = openToken(ctx, s.module, cfg.HSM, s.pinRefused); err != nil {
		if errors.Is(err, hsm.ErrPINIncorrect) {
			s.pinRefused(err)
		}
		s.close()
		return nil, err
	}
	return s, nil
}

// pinRefused records that the token refused the configured PIN, at start
// or on logging in again (after which the token tries no login until the
// process restarts): a login failure is audited, and an HSM locks a PIN
// after a few, so it is logged as an error for the operators.
func (s *service) pinRefused(err error) {
	s.log.Error("the HSM token refused the PIN; no login is tried again until sanad restarts with the right one (an HSM locks a PIN after a few refusals)",
		"token", s.cfg.HSM.TokenLabel, "err", err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if aerr := s.db.InTx(ctx, func(tx *store.Tx) error {
		return s.audit.Append(tx, audit.Event{Actor: "system", Action: "hsm.login.refused", Object: "token/" + s.cfg.HSM.TokenLabel,
			Details: map[string]any{"error": err.Error()}})
	}); aerr != nil {
		s.log.Error("auditing the HSM's refusal of the PIN", "err", aerr)
	}
}

// openKeylessService opens the store of cfg only: for the roles that hold
// no key (status). The caller closes it.
func openKeylessService(ctx context.Context, cfg config.Config, log *slog.Logger) (*service, error) {
	s := &service{cfg: cfg, log: log, now: time.Now, audit: audit.New(time.Now)}
	var err error
	if s.db, err = openStore(ctx, cfg.Database); err != nil {
		return nil, err
	}
	return s, nil
}

// findAuditKey finds the checkpoint key; production keys come from the
// audit-key ceremony, never from here.
func (s *service) findAuditKey(ctx context.Context) error {
	key, _, err := s.token.FindProtectedKey(ctx, s.cfg.Audit.KeyLabel)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return fmt.Errorf("audit key %q on token %q: %w (create it with the audit-key ceremony)", s.cfg.Audit.KeyLabel, s.cfg.HSM.TokenLabel, err)
	}
	if err != nil {
		return err
	}
	s.auditKey = key
	return nil
}

// checkpointer is the audit key's Checkpointer, which keeps the last
// checkpoint it signed on the token (a data object labelled after the
// key), where the database's writers cannot reach it.
func (s *service) checkpointer() (*audit.Checkpointer, error) {
	cp, err := audit.NewCheckpointer(s.db, s.auditKey, s.cfg.Audit.Origin, s.now)
	if err != nil {
		return nil, err
	}
	cp.Remember(checkpointMemory(s.token, s.cfg.Audit))
	return cp, nil
}

// checkpointMemory is where the token keeps the last checkpoint of the
// audit log its audit key signed, beside the key.
func checkpointMemory(tok *hsm.Token, a config.Audit) hsm.Data {
	return hsm.Data{Token: tok, Label: a.KeyLabel + "-checkpoint"}
}

// record writes one audit event in a transaction of its own, for changes
// that happen outside the database (such as a key generated in the HSM).
func (s *service) record(ctx context.Context, e audit.Event) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		return s.audit.Append(tx, e)
	})
}

// every adds a loop that calls fn every d until the service stops.
func (s *service) every(d time.Duration, fn func(ctx context.Context)) {
	s.loops = append(s.loops, func(ctx context.Context) { tick(ctx, d, fn) })
}

// fromStart is every, with fn run first as the service starts serving: for
// work whose period is longer than a node may stay up between
// deployments.
func (s *service) fromStart(d time.Duration, fn func(ctx context.Context)) {
	s.loops = append(s.loops, func(ctx context.Context) {
		fn(ctx)
		tick(ctx, d, fn)
	})
}

// tick runs fn every d until ctx ends.
func tick(ctx context.Context, d time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// handler builds the HTTP handler of the service and its metrics
// registry, and, when http.ops_addr is set, the operator endpoints' own
// handler (nil otherwise: they are on the service's).
func (s *service) handler() (http.Handler, http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, err
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sanad_build_info",
		Help:        "Always 1; the version label says which sanad is running.",
		ConstLabels: prometheus.Labels{"version": buildVersion()},
	})
	build.Set(1)
	// seqGauge reads a sequence number of the audit log at each scrape,
	// -1 when the store does not answer within a second.
	seqGauge := func(name, help string, read func(context.Context) (int64, error)) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			seq, err := read(ctx)
			if err != nil {
				return -1
			}
			return float64(seq)
		})
	}
	auditHead := seqGauge("sanad_audit_head_seq", "Sequence number of the newest audit event.",
		func(ctx context.Context) (int64, error) {
			head, err := s.db.AuditHead(ctx)
			return head.Seq, err
		})
	auditCheckpoint := seqGauge("sanad_audit_checkpoint_seq",
		"Sequence number the latest signed audit checkpoint covers (0: none yet). sanad_audit_head_seq minus this is how many events no checkpoint fixes: it grows when checkpoints fail (the HSM, or a log that no longer extends its checkpoints, which the log names).",
		func(ctx context.Context) (int64, error) {
			cp, err := s.db.LatestAuditCheckpoint(ctx)
			if errors.Is(err, store.ErrNotFound) {
				return 0, nil
			}
			return cp.Seq, err
		})
	groups := func(name, help string, v func(store.GroupStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(s.db.GroupStats())) })
	}
	groupSeconds := func(name, help string, v func(store.GroupStats) time.Duration) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return v(s.db.GroupStats()).Seconds() })
	}
	collectors := []prometheus.Collector{build, auditHead, auditCheckpoint,
		groups("sanad_store_group_commits_total", "Transactions the group commits ran, each one commit: the callers per commit are sanad_store_group_calls_total over this.",
			func(g store.GroupStats) int64 { return g.Commits }),
		groups("sanad_store_group_calls_total", "Audited writes (enrollment steps, issuances) committed through a group commit.",
			func(g store.GroupStats) int64 { return g.Calls }),
		groups("sanad_store_group_reruns_total", "Group transactions run again with a savepoint per caller because one caller failed.",
			func(g store.GroupStats) int64 { return g.Reruns }),
		groupSeconds("sanad_store_group_busy_seconds_total", "Time the group commits' transactions ran, commit included, with any wait for SQLite's writer: on SQLite its rate is about the share of time the one writer was busy with them.",
			func(g store.GroupStats) time.Duration { return g.Busy }),
		groupSeconds("sanad_store_group_wait_seconds_total", "Time audited writes spent in group commits, queued and running, summed over writes (a batch of the CA's issuance writes counts once): over sanad_store_group_calls_total, what a write waits for its commit.",
			func(g store.GroupStats) time.Duration { return g.Wait }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	for _, register := range s.collectors {
		if err := register(reg); err != nil {
			return nil, nil, err
		}
	}
	metrics, err := api.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	for _, add := range s.routes {
		add(mux)
	}
	checks := map[string]api.Check{"database": s.db.Ping}
	if s.token != nil {
		checks["hsm"] = s.token.Ping
	}
	for name, check := range s.checks {
		checks[name] = check
	}
	ops := api.Ops{Checks: checks, Gatherer: reg, Log: s.log}
	var opsHandler http.Handler
	if s.cfg.HTTP.OpsAddr == "" {
		ops.Register(mux)
	} else {
		opsMux := http.NewServeMux()
		ops.Register(opsMux)
		opsHandler = metrics.Wrap(opsMux, s.log)
	}
	h := metrics.Wrap(mux, s.log)
	for _, front := range s.fronts {
		h = front(h)
	}
	return h, opsHandler, nil
}

// serve runs the HTTP endpoints and the audit checkpointer until ctx ends.
// listening, if not nil, is told the bound address. A node with the audit
// key is not ready while its checkpointer finds the audit log cut short or
// rewritten under its signed checkpoints (audit.Checkpointer.Extends).
func (s *service) serve(ctx context.Context, listening func(net.Addr)) error {
	if s.auditKey == nil && s.token != nil {
		return errors.New("service has no audit key")
	}
	var cp *audit.Checkpointer
	if s.auditKey != nil { // a keyless node (status) signs no checkpoints
		var err error
		if cp, err = s.checkpointer(); err != nil {
			return err
		}
		s.addCheck("audit_log", cp.Extends)
	}
	h, opsHandler, err := s.handler()
	if err != nil {
		return err
	}
	limits := api.Limits{ReadHeader: s.cfg.HTTP.ReadHeaderTimeout, Idle: s.cfg.HTTP.IdleTimeout, Shutdown: s.cfg.HTTP.ShutdownTimeout,
		MaxConns: s.cfg.HTTP.MaxConnections}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	loopCtx, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var opsErr error
	if opsHandler != nil {
		// The operator endpoints on their own address: a failure there
		// (the address taken) stops the node, as one of the main one would.
		wg.Go(func() {
			if opsErr = api.Serve(serveCtx, s.cfg.HTTP.OpsAddr, opsHandler, limits, s.log, func(a net.Addr) {
				s.log.Info("sanad serving the operator endpoints (/healthz, /readyz, /metrics)", "addr", a.String())
			}); opsErr != nil {
				stopServing()
			}
		})
	}
	if cp != nil {
		wg.Go(func() { cp.Run(loopCtx, s.cfg.Audit.CheckpointInterval, s.log) })
	}
	for _, loop := range s.loops {
		wg.Go(func() { loop(loopCtx) })
	}
	err = api.Serve(serveCtx, s.cfg.HTTP.Addr, h, limits, s.log, listening)
	stopServing()
	stopLoops()
	wg.Wait()
	return errors.Join(err, opsErr)
}

// writeFileExclusive writes data to a new file with mode perm and fails if
// the file exists: nothing Sanad generates is ever silently overwritten.
func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
