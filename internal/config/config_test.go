package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte("hsm: {token_label: t}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.Database.Driver != "sqlite" || cfg.Audit.CheckpointInterval != time.Minute {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got := cfg.PublicBaseURL(); got != "http://127.0.0.1:8080" {
		t.Errorf("PublicBaseURL() = %q without ca.base_url", got)
	}
	cfg, err = Parse([]byte("hsm: {token_label: t}\nca: {base_url: 'http://pki.sanad.example/'}\n"), noEnv)
	if err != nil || cfg.PublicBaseURL() != "http://pki.sanad.example" || cfg.RAPublicURL() != "" {
		t.Errorf("PublicBaseURL() = %q, RAPublicURL() = %q, %v", cfg.PublicBaseURL(), cfg.RAPublicURL(), err)
	}
	if cfg, err := Parse([]byte("hsm: {token_label: t}\nra: {public_url: 'https://ra.sanad.example/'}\n"), noEnv); err != nil || cfg.RAPublicURL() != "https://ra.sanad.example" {
		t.Errorf("RAPublicURL() = %q, %v", cfg.RAPublicURL(), err)
	}
	if cfg.HSM.PINEnv != DefaultPINEnv {
		t.Errorf("PINEnv = %q, want %q when no PIN source is configured", cfg.HSM.PINEnv, DefaultPINEnv)
	}
}

// TestEmptySecondDocument: a file ending in "---", as templates leave it,
// with nothing or a comment after, holds one document.
func TestEmptySecondDocument(t *testing.T) {
	for _, raw := range []string{"hsm: {token_label: t}\n---\n", "hsm: {token_label: t}\n---\n# nothing more\n", "hsm: {token_label: t}\n---\n~\n"} {
		if _, err := Parse([]byte(raw), noEnv); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every one must appear in the error
	}{
		{"unknown field", "hsm: {token_label: t, pin: 1234}\n", []string{"field pin not found"}},
		{"all problems at once",
			"http: {addr: nowhere}\ndatabase: {driver: mysql}\nhsm: {max_sessions: 0}\nlog: {level: loud}\n",
			[]string{"http.addr", "database.driver", "hsm.token_label", "hsm.max_sessions", "log.level"}},
		{"inline postgres password", "database: {driver: postgres, dsn: 'postgres://u:secret@db/sanad'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		{"keyword postgres password", "database: {driver: postgres, dsn: 'host=db password=secret'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		// Each of these pgx reads as a password too.
		{"password in a URL's query", "database: {driver: postgres, dsn: 'postgres://db.example/sanad?password=secret'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		{"password after another parameter", "database: {driver: postgres, dsn: 'postgresql://db/sanad?sslmode=require&PassWord=secret'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		{"password keyword with spaces", "database: {driver: postgres, dsn: 'host=db password = secret'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		{"client key password", "database: {driver: postgres, dsn: 'host=db sslpassword=secret'}\nhsm: {token_label: t}\n",
			[]string{"database.dsn: holds a password"}},
		{"two PIN sources", "hsm: {token_label: t, pin_file: a, pin_env: B}\n", []string{"pin_file or pin_env"}},
		{"base URL with credentials", "hsm: {token_label: t}\nca: {base_url: 'https://u:s3cret@pki.example'}\n", []string{"ca.base_url"}},
		{"base URL not http", "hsm: {token_label: t}\nca: {base_url: 'ldap://pki.example'}\n", []string{"ca.base_url"}},
		{"base URL https", "hsm: {token_label: t}\nca: {base_url: 'https://pki.example'}\n", []string{"ca.base_url: https://pki.example: certificates name http URLs"}},
		{"RA URL with a query", "hsm: {token_label: t}\nra: {public_url: 'https://ra.example/?x=1'}\n", []string{"ra.public_url"}},
		{"short checkpoint interval", "hsm: {token_label: t}\naudit: {checkpoint_interval: 10ms}\n", []string{"audit.checkpoint_interval"}},
		{"status and OCSP", "hsm: {token_label: t}\nstatus: {cache_size: 0, sync_interval: 1ms, overlap: 1ms}\nocsp: {nonce: echo, nonce_per_second: 0}\nhttp: {read_header_timeout: 0s}\n",
			[]string{"status.cache_size", "status.sync_interval", "ocsp.nonce", "ocsp.nonce_per_second", "read_header_timeout"}},
		{"verify", "hsm: {token_label: t}\nverify: {aia_prefixes: ['http://pki.example.kz', 'file:///etc/'], ocsp_responder: 'ldap://x', max_content_bytes: 0, max_concurrent: 0, max_held_bytes: 1000, fetch_timeout: 1ms, revocation_cache_ttl: -1s}\n",
			[]string{"verify.aia_prefixes: \"http://pki.example.kz\"", "verify.aia_prefixes: \"file:///etc/\"", "verify.ocsp_responder", "verify.max_content_bytes", "verify.max_concurrent", "verify.max_held_bytes", "verify.fetch_timeout", "verify.revocation_cache_ttl"}},
		{"overlap shorter than the sync", "hsm: {token_label: t}\nstatus: {sync_interval: 5s, overlap: 1s}\n", []string{"status.overlap"}},
		{"resync shorter than the sync, window shorter than the overlap, no store reads", "hsm: {token_label: t}\nstatus: {sync_interval: 5s, overlap: 10s, resync_interval: 1s, resync_window: 5s, max_store_reads: 0}\n", []string{"status.resync_interval", "status.resync_window", "status.max_store_reads"}},
		{"trusted proxy", "hsm: {token_label: t}\nhttp: {trusted_proxies: [10.0.0.0/8, lb.example]}\n", []string{"http.trusted_proxies: \"lb.example\""}},
		{"operator address", "hsm: {token_label: t}\nhttp: {ops_addr: nowhere}\n", []string{"http.ops_addr: \"nowhere\" is not host:port"}},
		{"operator address is the public one", "hsm: {token_label: t}\nhttp: {addr: '0.0.0.0:8080', ops_addr: '0.0.0.0:8080'}\n", []string{"http.ops_addr: is http.addr"}},
		{"webhook with a token in its query", "hsm: {token_label: t}\nra: {notify_webhook: 'https://sms.example/send?api_key=s3cret'}\n", []string{"ra.notify_webhook: carries credentials", "notify_webhook_token_file"}},
		{"webhook with a password", "hsm: {token_label: t}\nra: {notify_webhook: 'https://u:s3cret@sms.example/send'}\n", []string{"ra.notify_webhook: carries credentials"}},
		{"webhook over http", "hsm: {token_label: t}\nra: {notify_webhook: 'http://sms.example/send'}\n", []string{"ra.notify_webhook: http://sms.example: plain http is allowed only on a loopback host"}},
		{"negative connection cap", "hsm: {token_label: t}\nhttp: {max_connections: -1}\n", []string{"http.max_connections: must not be negative"}},
		{"OCSP signer checks and CRL retention", "hsm: {token_label: t}\nca: {signer_check_interval: 100ms, keep_replaced_crls: -1h}\n",
			[]string{"ca.signer_check_interval: 100ms is outside 1s..1h", "ca.keep_replaced_crls: -1h0m0s is outside 0..8784h"}},
		{"registry over http", "hsm: {token_label: t}\nra: {registry_url: 'http://registry.gov.kz/api'}\n", []string{"ra.registry_url: http://registry.gov.kz: plain http"}},
		{"registry with a token in its query", "hsm: {token_label: t}\nra: {registry_url: 'https://registry.gov.kz/api?token=s3cret'}\n", []string{"ra.registry_url: carries credentials", "ra.registry_token_file"}},
		{"webhook not http", "hsm: {token_label: t}\nra: {notify_webhook: 'ftp://sms.example/send'}\n", []string{"ra.notify_webhook: is not an http(s) URL"}},
		{"webhook token without a webhook", "hsm: {token_label: t}\nra: {notify_webhook_token_file: /run/secrets/gw}\n", []string{"ra.notify_webhook_token_file"}},
		{"bounds above", "hsm: {token_label: t}\naudit: {checkpoint_interval: 87600h}\nhttp: {read_header_timeout: 8760h, idle_timeout: 8760h, shutdown_timeout: 8760h}\nca: {keep_replaced_crls: 87600h}\n",
			[]string{"audit.checkpoint_interval: 87600h0m0s is outside 1s..1h", "http.read_header_timeout", "http.idle_timeout", "http.shutdown_timeout", "ca.keep_replaced_crls"}},
		{"a proxy prefix as wide as the Internet", "hsm: {token_label: t}\nhttp: {trusted_proxies: [0.0.0.0/0]}\n", []string{`http.trusted_proxies: "0.0.0.0/0" is wider than /8`}},
		{"an IPv6 proxy prefix too wide", "hsm: {token_label: t}\nhttp: {trusted_proxies: ['2000::/3']}\n", []string{`http.trusted_proxies: "2000::/3" is wider than /7`}},
		{"every IPv4 address, mapped", "hsm: {token_label: t}\nhttp: {trusted_proxies: ['::ffff:0.0.0.0/96']}\n", []string{`http.trusted_proxies: "::ffff:0.0.0.0/96" is wider than /8`}},
		{"a second document", "hsm: {token_label: t}\n---\ndatabase: {driver: postgres}\nbogus_key: 1\n", []string{"more than one YAML document"}},
		{"base URL with a password that does not parse", "hsm: {token_label: t}\nca: {base_url: 'http://admin:s3cret@pki.example/%zz'}\n", []string{"ca.base_url"}},
		{"verify URLs with credentials", "hsm: {token_label: t}\nverify: {ocsp_responder: 'https://u:s3cret@ocsp.example', aia_prefixes: ['http://u:s3cret@pki.example/', 'http://u:s3cret@pki.example/%zz/']}\n",
			[]string{"verify.ocsp_responder", "verify.aia_prefixes: \"http://u:xxxxx@pki.example/\"", "verify.aia_prefixes: (a value that is not a URL)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q quotes the secret", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestProxies: addresses and prefixes, IPv4-mapped addresses unmapped.
func TestProxies(t *testing.T) {
	got, err := HTTP{TrustedProxies: []string{"10.1.2.3", "10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.1", "fc00::/7", "::ffff:10.0.0.0/104"}}.Proxies()
	want := []string{"10.1.2.3/32", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32", "fc00::/7", "10.0.0.0/8"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("Proxies = %v, %v", got, err)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("proxy %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	env := map[string]string{
		EnvHTTPAddr:    "0.0.0.0:9000",
		EnvDatabaseDSN: "postgres://u:secret@db/sanad",
		EnvHSMPINFile:  "/run/secrets/pin",
	}
	yaml := "database: {driver: postgres, dsn_file: /nope}\nhsm: {token_label: t}\n"
	cfg, err := Parse([]byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// A password from the environment is allowed: it is not in a file.
	if cfg.HTTP.Addr != "0.0.0.0:9000" || cfg.Database.DSN != env[EnvDatabaseDSN] || cfg.Database.DSNFile != "" {
		t.Errorf("environment not applied: %+v", cfg)
	}
	if cfg.HSM.PINFile != "/run/secrets/pin" || cfg.HSM.PINEnv != "" {
		t.Errorf("PIN source = file %q env %q", cfg.HSM.PINFile, cfg.HSM.PINEnv)
	}
}

func TestLoadResolvesPathsAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sanad.yaml")
	yaml := "database: {dsn: sanad.db}\nhsm: {token_label: t, pin_file: hsm-pin, softhsm2_conf: softhsm2.conf}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"dsn": cfg.Database.DSN, "pin_file": cfg.HSM.PINFile, "softhsm2_conf": cfg.HSM.SoftHSMConf,
	} {
		if filepath.Dir(got) != dir {
			t.Errorf("%s = %q, want it under %s", name, got, dir)
		}
	}
}

func TestConnStringFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dsn")
	if err := os.WriteFile(p, []byte("postgres://u:pw@db/sanad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Database{DSNFile: p}.ConnString()
	if err != nil || got != "postgres://u:pw@db/sanad" {
		t.Errorf("ConnString = %q, %v", got, err)
	}
	if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Database{DSNFile: p}).ConnString(); err == nil {
		t.Error("empty dsn_file accepted")
	}
	// A password others may read is refused, not used (as a PIN file is).
	if err := os.WriteFile(p, []byte("postgres://u:pw@db/sanad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (Database{DSNFile: p}).ConnString(); err == nil || !strings.Contains(err.Error(), "has mode 0644") || strings.Contains(err.Error(), "pw@") {
		t.Errorf("a dsn_file of mode 0644: %v", err)
	}
}
