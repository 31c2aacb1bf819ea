// Package hsmtest gives tests a real SoftHSM2 token: a fresh, initialized,
// logged-in token per call of NewToken, in a SoftHSM2 configuration private
// to the test binary.
//
// PKCS#11 can be initialized only once per process, and SoftHSM2 reads
// SOFTHSM2_CONF when it is initialized. So the first NewToken of a test
// binary creates a temporary directory with a softhsm2.conf and a token
// directory, sets SOFTHSM2_CONF for the whole process, and loads one
// hsm.Module that every later NewToken shares. Tests that also use SoftHSM2
// without this package would see that configuration.
//
// Use Main from TestMain to remove the directory when the binary exits:
//
//	func TestMain(m *testing.M) { hsmtest.Main(m) }
//
// Without it the directory (a few kilobytes per token) is left in os.TempDir.
//
// If SoftHSM2 is not installed, NewToken stops the test through
// testenv.Missing: a skip on a developer's machine, a failure in CI.
//
// Only tests import this package.
package hsmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/testenv"
)

// Token is a fresh SoftHSM2 token, open and logged in.
type Token struct {
	Module *hsm.Module
	Token  *hsm.Token
	Label  string
	PIN    hsm.PIN // user PIN
	SOPIN  hsm.PIN // security officer PIN
	// ConfPath is the SoftHSM2 configuration (SOFTHSM2_CONF) and
	// ModulePath the PKCS#11 module, for running pkcs11-tool against the
	// token.
	ConfPath   string
	ModulePath string
}

// Env returns the environment for a child process (pkcs11-tool, openssl)
// that must see this test binary's tokens: os.Environ with SOFTHSM2_CONF.
func (tok *Token) Env() []string {
	return append(os.Environ(), "SOFTHSM2_CONF="+tok.ConfPath)
}

// softHSM is the process-wide SoftHSM2 set-up, made once per test binary:
// PKCS#11 and SoftHSM2's configuration are process-wide, so this must be too.
var softHSM struct {
	once sync.Once
	mu   sync.Mutex // guards the fields below against Main's cleanup

	dir        string
	confPath   string
	modulePath string
	module     *hsm.Module
	missing    error // SoftHSM2 is not installed
	err        error // set-up failed otherwise

	seq atomic.Uint64 // token label counter
}

func setup() {
	modulePath, err := hsm.DefaultModulePath()
	if err != nil {
		softHSM.missing = err
		return
	}
	dir, err := os.MkdirTemp("", "sanad-softhsm-")
	if err != nil {
		softHSM.err = fmt.Errorf("hsmtest: %w", err)
		return
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		softHSM.err = fmt.Errorf("hsmtest: %w", err)
		return
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("# SoftHSM2 configuration of one test binary (hsmtest)\n"+
		"directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		softHSM.err = fmt.Errorf("hsmtest: %w", err)
		return
	}
	// SoftHSM2 reads this at C_Initialize, which LoadModule calls next.
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		softHSM.err = fmt.Errorf("hsmtest: %w", err)
		return
	}
	m, err := hsm.LoadModule(modulePath)
	if err != nil {
		softHSM.err = fmt.Errorf("hsmtest: %w", err)
		return
	}
	softHSM.dir, softHSM.confPath, softHSM.modulePath, softHSM.module = dir, conf, modulePath, m
}

// Module returns the test binary's shared SoftHSM2 module, with the
// configuration path and module path, setting them up on first use.
func Module(t testing.TB) (m *hsm.Module, confPath, modulePath string) {
	t.Helper()
	softHSM.once.Do(setup)
	softHSM.mu.Lock()
	defer softHSM.mu.Unlock()
	if softHSM.missing != nil {
		testenv.Missing(t, "SoftHSM2: %v", softHSM.missing)
	}
	if softHSM.err != nil {
		t.Fatal(softHSM.err)
	}
	if softHSM.module == nil {
		t.Fatal("hsmtest: used after Main cleaned up")
	}
	return softHSM.module, softHSM.confPath, softHSM.modulePath
}

// NewToken initializes a token with a unique label and random PINs through
// hsm.InitToken, opens it with the default TokenConfig, and closes it when
// the test ends.
func NewToken(t testing.TB) *Token {
	t.Helper()
	m, confPath, modulePath := Module(t)
	label := fmt.Sprintf("sanad-test-%d", softHSM.seq.Add(1))
	soPIN, err := hsm.GeneratePIN()
	if err != nil {
		t.Fatal(err)
	}
	pin, err := hsm.GeneratePIN()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.InitToken(ctx, label, soPIN, pin); err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	tok, err := m.OpenToken(ctx, hsm.TokenConfig{Label: label, PIN: pin})
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("hsmtest: close token %s: %v", label, err)
		}
	})
	return &Token{
		Module:     m,
		Token:      tok,
		Label:      label,
		PIN:        pin,
		SOPIN:      soPIN,
		ConfPath:   confPath,
		ModulePath: modulePath,
	}
}

// Main runs the tests, then closes the shared module and removes the
// SoftHSM2 directory, and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Cleanup closes the shared module and removes the SoftHSM2 directory. Main
// calls it; call it yourself from a TestMain that cannot use Main. Tokens
// must be closed by then (NewToken's cleanups have run when m.Run returns).
func Cleanup() error {
	softHSM.mu.Lock()
	defer softHSM.mu.Unlock()
	var errs []error
	if softHSM.module != nil {
		errs = append(errs, softHSM.module.Close())
		softHSM.module = nil
	}
	if softHSM.dir != "" {
		errs = append(errs, os.RemoveAll(softHSM.dir))
		softHSM.dir = ""
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hsmtest: clean up: %w", err)
	}
	return nil
}
