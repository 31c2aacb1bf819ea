// Package config reads Sanad's configuration: one YAML file, then
// environment overrides, then defaults, validated with every problem reported
// at once.
//
// Secrets never live in the file: the HSM PIN comes from a file named by
// hsm.pin_file or from the environment variable named by hsm.pin_env, and a
// database password only from database.dsn_file or SANAD_DATABASE_DSN. A
// config that carries a password inline is rejected.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanadpki/sanad/internal/outbound"
	"github.com/sanadpki/sanad/internal/secretfile"
)

// Config is the whole configuration of one sanad process.
type Config struct {
	HTTP     HTTP     `yaml:"http"`
	Database Database `yaml:"database"`
	HSM      HSM      `yaml:"hsm"`
	Audit    Audit    `yaml:"audit"`
	CA       CA       `yaml:"ca"`
	RA       RA       `yaml:"ra"`
	Status   Status   `yaml:"status"`
	OCSP     OCSP     `yaml:"ocsp"`
	Verify   Verify   `yaml:"verify"`
	Log      Log      `yaml:"log"`
}

// Verify configures the signature verification role (POST /api/v1/verify).
type Verify struct {
	// RootsFile is a PEM file of further trust anchors, besides the roots
	// of this deployment's store: other PKIs' (another country's national
	// root, for one), whose signers need digitalSignature or
	// contentCommitment, where the store's roots' signers need
	// contentCommitment, as Sanad's signing profiles have
	// (verify.Config.ForeignRoots).
	RootsFile string `yaml:"roots_file"`
	// OCSPResponder, when set, is asked instead of each certificate's AIA
	// OCSP URL, of a certificate that names one.
	OCSPResponder string `yaml:"ocsp_responder"`
	// AIAPrefixes are the URL prefixes from which missing intermediates may
	// be fetched (the caIssuers URL of a certificate whose issuer is not
	// known). Empty, the default: none, since the certificate naming the
	// URL is not yet trusted and anyone may send one (SSRF); the store's
	// issuing CAs are known without it.
	AIAPrefixes []string `yaml:"aia_prefixes"`
	// MaxContentBytes bounds the detached content a request may carry; the
	// signature itself is bounded by verify.MaxSignatureSize (16 MiB).
	MaxContentBytes int64 `yaml:"max_content_bytes"`
	// MaxConcurrent bounds the requests verified at once (each a few
	// signers' arithmetic), and four times as many the bodies arriving at
	// once; more wait up to 5 s for their turn, then are answered 503.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxHeldBytes bounds the bytes of request bodies read and held at
	// once, all requests together: a request holds its body's size from
	// the start of its read to the end of its verification, waiting for
	// its turn included, so that the memory requests take is bounded by
	// their bytes, not their count (what a request holds is about its
	// body's size: a JSON body decodes to three quarters of it, a
	// multipart one to its parts). A request whose bytes are not free
	// within 5 s is answered 503, a body larger than this 413. 0, the
	// default: twice the largest body (both parts of it base64-encoded in
	// JSON: with max_content_bytes at its default, 134 348 800 bytes,
	// about 128 MiB).
	MaxHeldBytes int64 `yaml:"max_held_bytes"`
	// FetchTimeout bounds each AIA, OCSP or CRL request.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// RevocationCacheTTL bounds how long an OCSP answer or a CRL is reused
	// for later verifications (never past its nextUpdate): how late this
	// node may learn of a revocation, against one status request per
	// verification. 0 asks every time.
	RevocationCacheTTL time.Duration `yaml:"revocation_cache_ttl"`
}

// OCSP configures how the status role treats nonces.
type OCSP struct {
	// Nonce is "ignore" (default: the pre-signed response answers every
	// request, RFC 5019 §4) or "sign": a request with a nonce (RFC 8954)
	// gets a response signed at once that echoes it, which needs the OCSP
	// signer's key, so the node opens the HSM.
	Nonce string `yaml:"nonce"`
	// NoncePerSecond bounds the responses signed for nonces, across all
	// clients (default 100 a second): each is an HSM signature anyone may
	// ask for. Past it, the pre-signed response answers, without the nonce.
	NoncePerSecond int `yaml:"nonce_per_second"`
}

// Status configures the OCSP, CRL and CA-certificate responder role.
type Status struct {
	// CacheSize bounds the OCSP responses held in memory (each about 1.5
	// KB); lookups past it read the store.
	CacheSize int `yaml:"cache_size"`
	// SyncInterval is how often re-signed and new responses are read from
	// the store; Overlap how far back each read starts again (longer than
	// any write transaction). Together they bound how late a responder
	// answers a revocation.
	SyncInterval time.Duration `yaml:"sync_interval"`
	Overlap      time.Duration `yaml:"overlap"`
	// ResyncInterval is how often a sync reads again every response
	// stamped within ResyncWindow of the node's clock: responses are
	// stamped by the clocks of the CA nodes that wrote them, and this
	// bounds how late a revocation stamped by a node whose clock is
	// behind another's is answered (see status.Config).
	ResyncInterval time.Duration `yaml:"resync_interval"`
	ResyncWindow   time.Duration `yaml:"resync_window"`
	// MaxStoreReads bounds the OCSP requests reading the store at once on
	// a cache miss; one more is answered tryLater after 50 ms, so that
	// requests for random serials leave the sync its connections (keep it
	// below database.max_open_conns).
	MaxStoreReads int `yaml:"max_store_reads"`
	// LogRequests logs each OCSP request's serial, outcome and client, for
	// debugging only: who checks whose certificate is private.
	LogRequests bool `yaml:"log_requests"`
	// Preload fills the cache with the stored responses (up to CacheSize)
	// before the responder is ready, so that no first request waits on the
	// store.
	Preload bool `yaml:"preload"`
}

// RA configures the registration authority role.
type RA struct {
	// RegistryFile is a registry to load (JSON file, or a directory of CSV
	// files; ra/registry documents both), for development and tests.
	RegistryFile string `yaml:"registry_file"`
	// RegistryURL is the national registry's HTTP API (ra/registry's
	// documented contract); RegistryTokenFile holds its bearer token.
	RegistryURL       string `yaml:"registry_url"`
	RegistryTokenFile string `yaml:"registry_token_file"`
	// OutboxDir, for development only, receives one-time codes as files
	// instead of sending them; NotifyWebhook is the SMS/e-mail gateway
	// (https, or http on a loopback host; no credentials or query in it),
	// and NotifyWebhookTokenFile holds the bearer token it is sent with.
	OutboxDir              string `yaml:"outbox_dir"`
	NotifyWebhook          string `yaml:"notify_webhook"`
	NotifyWebhookTokenFile string `yaml:"notify_webhook_token_file"`
	// CodeKeyFile holds the key (at least 32 bytes, mode 0600) one-time
	// codes are stored under, HMAC-SHA256: without it a six-digit code's
	// stored hash is reversed by anyone reading the database (a backup, a
	// replica) in a second. Every RA node shares it.
	CodeKeyFile string `yaml:"code_key_file"`
	// RegistryEventKeysFile holds the public keys (PEM PUBLIC KEY or
	// CERTIFICATE blocks) the national registry signs its events with
	// (POST /api/v1/registry/events); unset, the RA accepts no events.
	RegistryEventKeysFile string `yaml:"registry_event_keys_file"`
	// ClientPerMinute bounds enrollment, code, renewal and holder
	// revocation requests per client address (an IPv6 client's /64; its
	// /48 may make eight times as many), on each node; IdentifierPerHour
	// bounds, per national
	// identifier and across every RA node (kept in the database), the
	// codes sent (enrollments, codes sent again), three times as many
	// registry lookups, and apart from them the wrong codes given: past
	// it, no code of that person is checked until the hour's share comes
	// back. (Requests racing on several nodes may ask the registry a few
	// times more than its lookups; none hears its answer past them.) 0
	// disables a limit; IdentifierPerHour 0 still bounds wrong codes, at
	// ten an hour per person.
	ClientPerMinute   int `yaml:"client_requests_per_minute"`
	IdentifierPerHour int `yaml:"identifier_enrollments_per_hour"`
	// PublicURL is where applicants reach the RA's API, for the links the
	// notices sent to them carry; unset, notices name the path only (the
	// RA may not serve where the CA's base_url points). sanad dev sets it
	// to its own address.
	PublicURL string `yaml:"public_url"`
}

// RAPublicURL returns RA.PublicURL without a trailing slash ("" if unset).
func (c Config) RAPublicURL() string { return strings.TrimRight(c.RA.PublicURL, "/") }

// CA configures the certificate authority role.
type CA struct {
	// BaseURL is where relying parties reach this deployment's status tier
	// and CA certificates: certificates carry BaseURL/ocsp,
	// BaseURL/crl/<issuer>.crl and BaseURL/ca/<issuer>.crt. Empty means
	// http://<http.addr> (development only; `sanad serve --roles ca`
	// requires it).
	BaseURL string `yaml:"base_url"`
	// SignerCheckInterval is how often a CA or status node asks the store
	// which OCSP signer answers for each issuing CA (the valid one, not
	// revoked, that lasts longest): a signer added with sanad issuer add
	// is taken, and a revoked one dropped, within it, without a restart.
	// A revocation made through the node itself is acted on at once.
	SignerCheckInterval time.Duration `yaml:"signer_check_interval"`
	// KeepReplacedCRLs is how long past its nextUpdate a CRL that a newer
	// one replaced stays in the store. 0, the default: it is deleted once
	// its nextUpdate has passed (each crl.publish audit event keeps the
	// CRL's number, dates, entries and SHA-256); a policy that archives
	// every CRL sets the archive period.
	KeepReplacedCRLs time.Duration `yaml:"keep_replaced_crls"`
}

// PublicBaseURL returns BaseURL without a trailing slash, or the listener's
// address when it is empty.
func (c Config) PublicBaseURL() string {
	if c.CA.BaseURL == "" {
		return "http://" + c.HTTP.Addr
	}
	return strings.TrimRight(c.CA.BaseURL, "/")
}

// HTTP configures the listener shared by every role.
type HTTP struct {
	// Addr is host:port to listen on.
	Addr string `yaml:"addr"`
	// OpsAddr, if set, is host:port where /healthz, /readyz and /metrics
	// are served instead of on Addr: an address only operators and their
	// load balancers reach. What those answer (which dependency fails,
	// the officers' backlog, when issuing CAs end) is not for anonymous
	// clients. Unset, they are served on Addr.
	OpsAddr string `yaml:"ops_addr"`
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout cuts off a client that has not sent its headers
	// (one trickling them byte by byte); IdleTimeout a kept-alive
	// connection with no next request.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections each listener holds open; at the
	// cap, kept-alive idle ones are closed to make room, else new clients
	// wait. 0: 10 000, or half the files the process may open if that is
	// less, so that a flood of connections cannot take the files the HSM
	// module and the database need.
	MaxConnections int `yaml:"max_connections"`
	// TrustedProxies are the load balancers and proxies (addresses or
	// CIDR prefixes) whose X-Forwarded-For names the client, for
	// per-client limits; from anyone else the header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Proxies parses TrustedProxies (a bare address is its own prefix).
func (h HTTP) Proxies() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(h.TrustedProxies))
	for _, v := range h.TrustedProxies {
		if p, err := netip.ParsePrefix(v); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// ::ffff:a.b.c.d/n is the IPv4 prefix a.b.c.d/(n-96).
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	// A prefix as wide as the Internet trusts every client's
	// X-Forwarded-For, and no per-client limit holds.
	for i, p := range out {
		if widest := map[bool]int{true: 8, false: 7}[p.Addr().Is4()]; p.Bits() < widest {
			return nil, fmt.Errorf("%q is wider than /%d: it would trust any client to name its own address", h.TrustedProxies[i], widest)
		}
	}
	return out, nil
}

// Database selects the store backend.
type Database struct {
	// Driver is "sqlite" (embedded default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a SQLite path, or a PostgreSQL connection string without a
	// password. A password goes in DSNFile or SANAD_DATABASE_DSN.
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the whole connection string.
	DSNFile string `yaml:"dsn_file"`
	// MaxOpenConns bounds the connection pool; 0 means the driver default.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// HSM names the PKCS#11 module, the token and where its PIN comes from.
type HSM struct {
	// Module is the PKCS#11 library; empty finds SoftHSM2 in the usual places.
	Module string `yaml:"module"`
	// TokenLabel selects the token.
	TokenLabel string `yaml:"token_label"`
	// PINFile names a 0600 file holding the user PIN.
	PINFile string `yaml:"pin_file"`
	// PINEnv names the environment variable holding the user PIN, used when
	// PINFile is empty.
	PINEnv string `yaml:"pin_env"`
	// MaxSessions bounds the PKCS#11 session pool.
	MaxSessions int `yaml:"max_sessions"`
	// SoftHSMConf, when set, is exported as SOFTHSM2_CONF before the module
	// loads (SoftHSM2 reads it at C_Initialize).
	SoftHSMConf string `yaml:"softhsm2_conf"`
}

// Audit configures the tamper-evident log.
type Audit struct {
	// KeyLabel is the HSM label of the key that signs checkpoints.
	KeyLabel string `yaml:"key_label"`
	// CheckpointInterval is how often a new checkpoint is signed when the
	// log has grown.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Origin names this log in its signed checkpoints.
	Origin string `yaml:"origin"`
}

// Log configures the process log (not the audit log).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Environment variables that override the file.
const (
	EnvHTTPAddr       = "SANAD_HTTP_ADDR"
	EnvDatabaseDriver = "SANAD_DATABASE_DRIVER"
	EnvDatabaseDSN    = "SANAD_DATABASE_DSN"
	EnvHSMModule      = "SANAD_HSM_MODULE"
	EnvHSMTokenLabel  = "SANAD_HSM_TOKEN_LABEL"
	EnvHSMPINFile     = "SANAD_HSM_PIN_FILE"
	// DefaultPINEnv is where the PIN is read from when neither pin_file nor
	// pin_env is configured.
	DefaultPINEnv = "SANAD_HSM_PIN"
)

// Default returns the configuration every file starts from.
func Default() Config {
	return Config{
		HTTP:     HTTP{Addr: "127.0.0.1:8080", ShutdownTimeout: 10 * time.Second, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second},
		Database: Database{Driver: "sqlite", DSN: "sanad.db"},
		HSM:      HSM{MaxSessions: 8},
		Audit:    Audit{KeyLabel: "sanad-audit", CheckpointInterval: time.Minute, Origin: "sanad audit log"},
		CA:       CA{SignerCheckInterval: time.Minute},
		RA:       RA{ClientPerMinute: 120, IdentifierPerHour: 10},
		Status:   Status{CacheSize: 1_000_000, SyncInterval: time.Second, Overlap: 10 * time.Second, ResyncInterval: 5 * time.Minute, ResyncWindow: time.Hour, MaxStoreReads: 4, Preload: true},
		OCSP:     OCSP{Nonce: "ignore", NoncePerSecond: 100},
		Verify:   Verify{MaxContentBytes: 32 << 20, MaxConcurrent: 4, FetchTimeout: 5 * time.Second, RevocationCacheTTL: time.Minute},
		Log:      Log{Level: "info", Format: "text"},
	}
}

// Load reads the file at path over Default, applies environment overrides
// (getenv is os.Getenv in production), resolves relative paths against the
// file's directory, and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.resolvePaths(abs)
	return cfg, nil
}

// shownURL is a URL as an error may repeat it, quoted: without its
// password, and not at all when it does not parse (where a password would
// be).
func shownURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "(a value that is not a URL)"
	}
	return strconv.Quote(u.Redacted())
}

// emptyDocument reports whether n, a decoded document, holds nothing: no
// content, or a null.
func emptyDocument(n *yaml.Node) bool {
	if n.Kind == 0 {
		return true
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) > 1 {
		return false
	}
	return len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null")
}

// Parse decodes YAML over Default, applies environment overrides and
// validates. Unknown fields are errors.
func Parse(raw []byte, getenv func(string) string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF and means "all defaults".
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse: %w", err)
	}
	// One document: what a second one ("---") holds would be read by no
	// one, unknown keys and all, and seem to be in force.
	// (An empty one after a closing "---", as templates leave, is none.)
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) && !emptyDocument(&more) {
		return Config{}, errors.New("parse: more than one YAML document: the file holds one configuration")
	}
	// A password is refused only where it would sit in a file; the
	// environment is an allowed place for it.
	var inFile error
	if hasPassword(cfg.Database.DSN) {
		inFile = fmt.Errorf("database.dsn: holds a password: put the connection string in dsn_file or %s", EnvDatabaseDSN)
	}
	cfg.applyEnv(getenv)
	if err := errors.Join(inFile, cfg.Validate()); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) applyEnv(getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.HTTP.Addr, EnvHTTPAddr)
	set(&c.Database.Driver, EnvDatabaseDriver)
	if v := getenv(EnvDatabaseDSN); v != "" {
		c.Database.DSN, c.Database.DSNFile = v, ""
	}
	set(&c.HSM.Module, EnvHSMModule)
	set(&c.HSM.TokenLabel, EnvHSMTokenLabel)
	set(&c.HSM.PINFile, EnvHSMPINFile)
	if c.HSM.PINFile == "" && c.HSM.PINEnv == "" {
		c.HSM.PINEnv = DefaultPINEnv
	}
}

// resolvePaths makes file paths relative to the config file's directory, so a
// ./var directory keeps working wherever it is started from.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.HSM.PINFile)
	abs(&c.HSM.SoftHSMConf)
	abs(&c.Database.DSNFile)
	abs(&c.RA.RegistryFile)
	abs(&c.Verify.RootsFile)
	abs(&c.RA.RegistryTokenFile)
	abs(&c.RA.NotifyWebhookTokenFile)
	abs(&c.RA.OutboxDir)
	abs(&c.RA.CodeKeyFile)
	abs(&c.RA.RegistryEventKeysFile)
	if c.Database.Driver == "sqlite" && !strings.HasPrefix(c.Database.DSN, "file:") {
		abs(&c.Database.DSN)
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.HTTP.OpsAddr); c.HTTP.OpsAddr != "" && err != nil {
		bad("http.ops_addr", "%q is not host:port", c.HTTP.OpsAddr)
	} else if c.HTTP.OpsAddr != "" && c.HTTP.OpsAddr == c.HTTP.Addr && port != "0" {
		bad("http.ops_addr", "is http.addr; leave it unset to serve the operator endpoints there")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%q is not host:port", c.HTTP.Addr)
	}
	if _, err := c.HTTP.Proxies(); err != nil {
		bad("http.trusted_proxies", "%v", err)
	}
	// Bounded above too: a header timeout of hours is no protection
	// against clients trickling headers.
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.ReadHeaderTimeout > time.Minute {
		bad("http.read_header_timeout", "%s is outside (0, 1m]", c.HTTP.ReadHeaderTimeout)
	}
	if c.HTTP.IdleTimeout <= 0 || c.HTTP.IdleTimeout > time.Hour {
		bad("http.idle_timeout", "%s is outside (0, 1h]", c.HTTP.IdleTimeout)
	}
	if c.HTTP.ShutdownTimeout <= 0 || c.HTTP.ShutdownTimeout > 10*time.Minute {
		bad("http.shutdown_timeout", "%s is outside (0, 10m]", c.HTTP.ShutdownTimeout)
	}
	if c.HTTP.MaxConnections < 0 {
		bad("http.max_connections", "must not be negative (0 takes the default)")
	}
	switch c.Database.Driver {
	case "sqlite", "postgres":
	default:
		bad("database.driver", "%q is neither sqlite nor postgres", c.Database.Driver)
	}
	switch {
	case c.Database.DSN == "" && c.Database.DSNFile == "":
		bad("database", "set dsn or dsn_file")
	case c.Database.DSN != "" && c.Database.DSNFile != "":
		bad("database", "set dsn or dsn_file, not both")
	}
	if c.Database.MaxOpenConns < 0 {
		bad("database.max_open_conns", "must not be negative")
	}
	if c.HSM.TokenLabel == "" {
		bad("hsm.token_label", "required")
	}
	if c.HSM.PINFile != "" && c.HSM.PINEnv != "" {
		bad("hsm", "set pin_file or pin_env, not both")
	}
	if c.HSM.MaxSessions < 1 {
		bad("hsm.max_sessions", "must be at least 1")
	}
	if c.Audit.KeyLabel == "" {
		bad("audit.key_label", "required")
	}
	// At most an hour: the checkpoints are what makes the log's history
	// signed, and a longer interval leaves that much of it unsigned.
	if c.Audit.CheckpointInterval < time.Second || c.Audit.CheckpointInterval > time.Hour {
		bad("audit.checkpoint_interval", "%s is outside 1s..1h", c.Audit.CheckpointInterval)
	}
	if c.Audit.Origin == "" || strings.ContainsAny(c.Audit.Origin, "\n") {
		bad("audit.origin", "must be one non-empty line")
	}
	for _, f := range []struct{ name, v string }{{"ca.base_url", c.CA.BaseURL}, {"ra.public_url", c.RA.PublicURL}} {
		name, v := f.name, f.v
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad(name, "%s is not an http(s) URL without credentials, query or fragment", shownURL(v))
		}
	}
	// The URLs certificates carry for OCSP, CRLs and CA certificates are
	// http (RFC 5280 §4.2.2.1 and §4.2.1.13, RFC 5019 §5): their contents
	// are signed, and a relying party checking a TLS server's status over
	// TLS would need that status first. (zlint refuses an https caIssuers
	// URL, so every issuance would fail.)
	if u, err := url.Parse(c.CA.BaseURL); c.CA.BaseURL != "" && err == nil && u.Scheme == "https" {
		bad("ca.base_url", "https://%s: certificates name http URLs for OCSP, CRLs and CA certificates (RFC 5280, RFC 5019); serve them over http", u.Host)
	}
	if c.RA.RegistryFile != "" && c.RA.RegistryURL != "" {
		bad("ra", "set registry_file or registry_url, not both")
	}
	if c.RA.OutboxDir != "" && c.RA.NotifyWebhook != "" {
		bad("ra", "set outbox_dir or notify_webhook, not both")
	}
	if c.RA.ClientPerMinute < 0 || c.RA.IdentifierPerHour < 0 {
		bad("ra", "rate limits must not be negative (0 disables one)")
	}
	// The webhook carries one-time codes and the registry's path carries
	// national identifiers: outbound's errors never quote the URL, which
	// could hold a secret.
	for _, o := range []struct{ key, url, tokenFile string }{
		{"ra.notify_webhook", c.RA.NotifyWebhook, "ra.notify_webhook_token_file"},
		{"ra.registry_url", c.RA.RegistryURL, "ra.registry_token_file"},
	} {
		if _, err := outbound.Parse(o.url); o.url != "" && errors.Is(err, outbound.ErrSecretInURL) {
			bad(o.key, "%v: put the bearer token in %s", err, o.tokenFile)
		} else if o.url != "" && err != nil {
			bad(o.key, "%v", err)
		}
	}
	if c.RA.NotifyWebhookTokenFile != "" && c.RA.NotifyWebhook == "" {
		bad("ra.notify_webhook_token_file", "set without ra.notify_webhook")
	}
	if c.CA.SignerCheckInterval < time.Second || c.CA.SignerCheckInterval > time.Hour {
		bad("ca.signer_check_interval", "%s is outside 1s..1h", c.CA.SignerCheckInterval)
	}
	if c.CA.KeepReplacedCRLs < 0 || c.CA.KeepReplacedCRLs > 366*24*time.Hour {
		bad("ca.keep_replaced_crls", "%s is outside 0..8784h (a year)", c.CA.KeepReplacedCRLs)
	}
	if c.Status.CacheSize < 1 {
		bad("status.cache_size", "must be at least 1")
	}
	if c.Status.SyncInterval < 10*time.Millisecond || c.Status.SyncInterval > time.Hour {
		bad("status.sync_interval", "%s is outside 10ms..1h", c.Status.SyncInterval)
	}
	if c.Status.Overlap < c.Status.SyncInterval || c.Status.Overlap > 24*time.Hour {
		bad("status.overlap", "%s must be at least status.sync_interval and at most 24h", c.Status.Overlap)
	}
	if c.Status.ResyncInterval < c.Status.SyncInterval || c.Status.ResyncInterval > 24*time.Hour {
		bad("status.resync_interval", "%s must be at least status.sync_interval and at most 24h", c.Status.ResyncInterval)
	}
	if c.Status.MaxStoreReads < 1 || c.Status.MaxStoreReads > 1024 {
		bad("status.max_store_reads", "%d is outside 1..1024", c.Status.MaxStoreReads)
	}
	if c.Status.ResyncWindow < c.Status.Overlap || c.Status.ResyncWindow > 7*24*time.Hour {
		bad("status.resync_window", "%s must be at least status.overlap and at most 168h", c.Status.ResyncWindow)
	}
	if c.Verify.MaxContentBytes < 1 || c.Verify.MaxContentBytes > 1<<30 {
		bad("verify.max_content_bytes", "%d is outside 1..1073741824", c.Verify.MaxContentBytes)
	}
	if c.Verify.RevocationCacheTTL < 0 || c.Verify.RevocationCacheTTL > 24*time.Hour {
		bad("verify.revocation_cache_ttl", "%s is outside 0..24h", c.Verify.RevocationCacheTTL)
	}
	if c.Verify.MaxConcurrent < 1 || c.Verify.MaxConcurrent > 1024 {
		bad("verify.max_concurrent", "%d is outside 1..1024", c.Verify.MaxConcurrent)
	}
	if c.Verify.MaxHeldBytes != 0 && (c.Verify.MaxHeldBytes < 1<<20 || c.Verify.MaxHeldBytes > 1<<40) {
		bad("verify.max_held_bytes", "%d is outside 1048576..1099511627776 (0 takes the default)", c.Verify.MaxHeldBytes)
	}
	if c.Verify.FetchTimeout < 100*time.Millisecond || c.Verify.FetchTimeout > time.Minute {
		bad("verify.fetch_timeout", "%s is outside 100ms..1m", c.Verify.FetchTimeout)
	}
	for _, p := range c.Verify.AIAPrefixes {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || !strings.HasSuffix(p, "/") {
			bad("verify.aia_prefixes", "%s is not an http(s) URL without credentials ending in /", shownURL(p))
		}
	}
	if c.Verify.OCSPResponder != "" {
		if u, err := url.Parse(c.Verify.OCSPResponder); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			bad("verify.ocsp_responder", "%s is not an http(s) URL without credentials", shownURL(c.Verify.OCSPResponder))
		}
	}
	if c.OCSP.NoncePerSecond < 1 || c.OCSP.NoncePerSecond > 1_000_000 {
		bad("ocsp.nonce_per_second", "%d is outside 1..1000000", c.OCSP.NoncePerSecond)
	}
	if c.OCSP.Nonce != "ignore" && c.OCSP.Nonce != "sign" {
		bad("ocsp.nonce", "%q is not ignore or sign", c.OCSP.Nonce)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

// ConnString returns the database connection string, reading DSNFile when set.
func (d Database) ConnString() (string, error) {
	if d.DSNFile == "" {
		return d.DSN, nil
	}
	raw, err := secretfile.Read("database.dsn_file", d.DSNFile)
	if err != nil {
		return "", err
	}
	dsn := strings.TrimSpace(string(raw))
	clear(raw)
	if dsn == "" {
		return "", fmt.Errorf("database.dsn_file %s is empty", d.DSNFile)
	}
	return dsn, nil
}

// hasPassword reports whether a PostgreSQL connection string (URL or
// keyword/value form) carries a password, or a client key's (sslpassword),
// however pgx would find it: in the URL's user information or query
// (password=, sslpassword=, in any case, percent-encoded or not), or as a
// keyword with or without spaces around its "=".
func hasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				return true
			}
		}
		for k := range u.Query() {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				return true
			}
		}
	}
	return passwordKeyword.MatchString(dsn)
}

var passwordKeyword = regexp.MustCompile(`(?i)(^|[\s?&])(ssl)?password\s*=`)
