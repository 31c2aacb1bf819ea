package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
)

// The quick-start directory. Everything `sanad dev` needs lives here, and a
// second start reuses it.
const (
	devConfigFile  = "sanad.yaml"
	devSoftHSMConf = "softhsm2.conf"
	devTokenDir    = "tokens"
	devPINFile     = "hsm-pin"
	devSOPINFile   = "hsm-so-pin"
	devAuditPEM    = "audit-key.pem"
	devLockFile    = ".lock"
	// devRegistryEventKey signs the sample registry's events;
	// devRegistryEventPub, its public key, is what the RA trusts.
	devRegistryEventKey = "registry-events-key.pem"
	devRegistryEventPub = "registry-events.pub.pem"
	devTokenLabel       = "sanad-dev"
	// devAddr is where sanad dev serves unless told otherwise.
	devAddr = "127.0.0.1:8080"
)

// devConfig is written once; paths in it are relative to the file, and it
// holds no secret (the PIN is in hsm-pin, mode 0600).
const devConfig = `# Written by "sanad dev" on its first start; edit freely.
# Paths are relative to this file. No secrets here: the HSM PIN is in hsm-pin (0600).
http:
  addr: %q
database:
  driver: sqlite
  dsn: sanad.db
hsm:
  softhsm2_conf: softhsm2.conf
  token_label: ` + devTokenLabel + `
  pin_file: ` + devPINFile + `
audit:
  key_label: sanad-audit
  checkpoint_interval: 1m
  origin: sanad dev audit log
ra:
  registry_file: registry.json   # the sample registry, written on the first start
  outbox_dir: outbox             # one-time codes land here (dev only)
  code_key_file: ra-code-key     # the key codes are stored under (0600), written on the first start
  registry_event_keys_file: registry-events.pub.pem  # the sample registry's event key (its private half: registry-events-key.pem)
`

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole service on embedded defaults: SQLite and a SoftHSM2 token under ./var",
		Long: `dev creates ./var on its first start — a SoftHSM2 token directory with its own
softhsm2.conf, a token PIN in a 0600 file, a SQLite database and a config
file — and serves HTTP on 127.0.0.1:8080 (/healthz, /readyz, /metrics).
Starting it again reuses ./var: the same token, keys and database.`,
		Args: cobra.NoArgs,
	}
	dir := cmd.Flags().String("dir", "var", "directory holding the dev token, database and config")
	addr := cmd.Flags().String("addr", "", "listen address (default "+devAddr+", or http.addr of the config); the dev CA's certificates name the first start's")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *addr != "" {
			if _, _, err := net.SplitHostPort(*addr); err != nil {
				return usagef("--addr %q is not host:port", *addr)
			}
		}
		return runDev(cmd.Context(), *dir, *addr, cmd)
	}
	return cmd
}

func runDev(ctx context.Context, dir, addr string, cmd *cobra.Command) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, devTokenDir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := lockDir(filepath.Join(dir, devLockFile))
	if err != nil {
		return err
	}
	defer unlock()

	// SoftHSM2 wants an absolute token directory; rewriting the file on
	// every start keeps ./var working after it is moved.
	softhsmConf := fmt.Sprintf("# Written by sanad dev on every start.\ndirectories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
		filepath.Join(dir, devTokenDir))
	if err := os.WriteFile(filepath.Join(dir, devSoftHSMConf), []byte(softhsmConf), 0o600); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, devConfigFile)
	// The first start's address goes into the configuration: the dev
	// PKI's certificates carry it (see below).
	firstAddr := addr
	if firstAddr == "" {
		firstAddr = devAddr
	}
	if err := writeFileExclusive(cfgPath, fmt.Appendf(nil, devConfig, firstAddr), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	if addr != "" {
		cfg.HTTP.Addr = addr
	}
	if cfg.RA.PublicURL == "" { // the links in notices: here
		cfg.RA.PublicURL = cfg.PublicBaseURL()
	}
	log := newLogger(cfg.Log, cmd.ErrOrStderr())
	// The dev CA's certificates name the base URL of the start that made
	// them (the issuing CA's CRL and CA certificate URLs; OCSP in every
	// certificate issued since): served elsewhere, relying parties and
	// sanad verify cannot reach them.
	if pkiBase, ok := devPKIBase(filepath.Join(dir, "pki", "issuing.pem")); ok && pkiBase != cfg.PublicBaseURL() {
		log.Warn("the dev CA's certificates, and those issued so far, name "+pkiBase+" for CRLs, OCSP and CA certificates, which will not answer here;"+
			" serve there, or remove "+dir+" and start again with --addr to move the quick start",
			"serving", cfg.PublicBaseURL(), "certificates_name", pkiBase)
	}

	tokenCreated, err := ensureDevToken(ctx, dir, cfg.HSM)
	if err != nil {
		return err
	}
	s, err := openService(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.close()
	if tokenCreated {
		if err := s.record(ctx, audit.Event{Actor: "system", Action: "hsm.token.init", Object: cfg.HSM.TokenLabel,
			Details: map[string]any{"module": s.module.Path(), "purpose": "dev quick start"}}); err != nil {
			return err
		}
	}
	if err := ensureDevPKI(ctx, s, dir, cfg.PublicBaseURL()); err != nil {
		return err
	}
	if err := ensureDevAuditKey(ctx, s, filepath.Join(dir, devAuditPEM)); err != nil {
		return err
	}
	authority, err := openCA(ctx, s, cfg.PublicBaseURL())
	if err != nil {
		return err
	}
	if err := authority.start(ctx, s); err != nil {
		return err
	}
	if cfg.RA.RegistryFile == "" && cfg.RA.RegistryURL == "" { // a ./var from before the RA
		cfg.RA.RegistryFile = filepath.Join(dir, "registry.json")
	}
	if cfg.RA.OutboxDir == "" && cfg.RA.NotifyWebhook == "" {
		cfg.RA.OutboxDir = filepath.Join(dir, "outbox")
	}
	if cfg.RA.OutboxDir != "" {
		// There from the start, for whoever watches it; it will hold
		// one-time codes.
		if err := os.MkdirAll(cfg.RA.OutboxDir, 0o700); err != nil {
			return fmt.Errorf("create the outbox: %w", err)
		}
	}
	if cfg.RA.RegistryFile != "" {
		if err := ensureDevRegistry(cfg.RA.RegistryFile); err != nil {
			return err
		}
	}
	if cfg.RA.CodeKeyFile != "" {
		if err := ensureDevCodeKey(cfg.RA.CodeKeyFile); err != nil {
			return err
		}
	}
	// The sample registry's events are signed with a key of its own,
	// made on first start (also for a ./var from before registry events).
	registryEventKey := filepath.Join(dir, devRegistryEventKey)
	if cfg.RA.RegistryEventKeysFile == "" && cfg.RA.RegistryURL == "" {
		cfg.RA.RegistryEventKeysFile = filepath.Join(dir, devRegistryEventPub)
	}
	if cfg.RA.RegistryEventKeysFile == filepath.Join(dir, devRegistryEventPub) {
		if err := ensureDevRegistryKey(registryEventKey, cfg.RA.RegistryEventKeysFile); err != nil {
			return err
		}
	} else {
		registryEventKey = ""
	}
	officers, err := ensureDevOfficers(ctx, s, authority, dir)
	if err != nil {
		return err
	}
	if err := startRA(ctx, s, authority, cfg.RA); err != nil {
		return err
	}
	if err := startStatus(ctx, s); err != nil {
		return err
	}
	if err := startVerify(ctx, s); err != nil {
		return err
	}
	return s.serve(ctx, func(a net.Addr) {
		base := "http://" + a.String()
		if err := writeDevManifest(dir, base, officers, cfg.RA.RegistryFile, registryEventKey); err != nil {
			log.Error("write dev.json", "err", err)
		}
		log.Info("sanad dev ready", "url", base, "dir", dir, "readyz", base+"/readyz", "manifest", filepath.Join(dir, "dev.json"))
	})
}

// devPKIBase is the base URL the dev issuing CA's certificate at path was
// made for (its CRL distribution point is <base>/crl/root.crl), and
// whether there is such a certificate.
func devPKIBase(path string) (string, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return "", false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil || len(c.CRLDistributionPoints) == 0 {
		return "", false
	}
	base, ok := strings.CutSuffix(c.CRLDistributionPoints[0], "/crl/root.crl")
	return base, ok
}

// lockDir holds an exclusive lock on path so two `sanad dev` never share one
// directory (both would try to initialize the same token).
func lockDir(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another sanad dev", filepath.Dir(path))
	}
	return func() { f.Close() }, nil
}

// ensureDevToken initializes the dev token on first start, with PINs
// generated into 0600 files. It reports whether it created the token.
func ensureDevToken(ctx context.Context, dir string, cfg config.HSM) (bool, error) {
	userPIN, err := ensurePINFile(filepath.Join(dir, devPINFile))
	if err != nil {
		return false, err
	}
	soPIN, err := ensurePINFile(filepath.Join(dir, devSOPINFile))
	if err != nil {
		return false, err
	}
	m, err := loadModule(cfg)
	if err != nil {
		return false, err
	}
	defer m.Close()
	tokens, err := m.Tokens()
	if err != nil {
		return false, err
	}
	if slices.ContainsFunc(tokens, func(t hsm.TokenInfo) bool { return t.Initialized && t.Label == cfg.TokenLabel }) {
		return false, nil
	}
	if err := m.InitToken(ctx, cfg.TokenLabel, soPIN, userPIN); err != nil {
		return false, fmt.Errorf("initialize dev token: %w", err)
	}
	return true, nil
}

// ensurePINFile reads the PIN at path, generating it first if the file does
// not exist.
func ensurePINFile(path string) (hsm.PIN, error) {
	pin, err := hsm.PINFromFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return pin, err
	}
	if pin, err = hsm.GeneratePIN(); err != nil {
		return hsm.PIN{}, err
	}
	if err := writeFileExclusive(path, append(pin.Bytes(), '\n'), 0o600); err != nil {
		return hsm.PIN{}, err
	}
	return pin, nil
}

// ensureDevAuditKey finds the audit key the dev audit-key ceremony made and
// keeps its public key in audit-key.pem for `sanad audit verify
// --public-key`.
func ensureDevAuditKey(ctx context.Context, s *service, pemPath string) error {
	if err := s.findAuditKey(ctx); err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(s.auditKey.Public())
	if err != nil {
		return err
	}
	want := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	have, err := os.ReadFile(pemPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return writeFileExclusive(pemPath, want, 0o644)
	case err != nil:
		return err
	case !bytes.Equal(have, want):
		return fmt.Errorf("%s does not hold the token's audit key %q", pemPath, s.cfg.Audit.KeyLabel)
	}
	return nil
}
