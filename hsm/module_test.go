package hsm_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/testenv"
)

func TestDefaultModulePath(t *testing.T) {
	p, err := hsm.DefaultModulePath()
	if err != nil {
		if !strings.Contains(err.Error(), "install softhsm2") {
			t.Errorf("error %q does not say to install softhsm2", err)
		}
		testenv.Missing(t, "SoftHSM2: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("DefaultModulePath() = %s: %v", p, err)
	}
}

func TestLoadModule(t *testing.T) {
	tok := hsmtest.NewToken(t) // initializes the module through hsmtest

	// The process already initialized the module: more LoadModule calls of
	// the same path share that initialization, and closing one leaves the
	// others (and open tokens) working.
	a, err := hsm.LoadModule(tok.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hsm.LoadModule("") // the default path, the same file here
	if err != nil {
		t.Fatal(err)
	}
	if a.Path() != tok.ModulePath {
		t.Errorf("Path() = %s, want %s", a.Path(), tok.ModulePath)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Tokens(); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("Tokens on a closed module: err = %v, want ErrClosed", err)
	}
	infos, err := b.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ti := range infos {
		if ti.Label == tok.Label {
			found = true
			if !ti.Initialized || ti.Serial == "" || ti.Manufacturer == "" || ti.Model == "" {
				t.Errorf("token info %+v: want initialized, with serial, manufacturer and model", ti)
			}
		}
	}
	if !found {
		t.Errorf("Tokens() = %+v, no token labelled %s", infos, tok.Label)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tok.Token.Ping(t.Context()); err != nil {
		t.Fatalf("token after closing the extra modules: %v", err)
	}

	if _, err := hsm.LoadModule("/nonexistent/libpkcs11.so"); err == nil {
		t.Error("LoadModule of a missing file succeeded")
	}
}

func TestTokenErrors(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := t.Context()
	other, err := hsm.GeneratePIN()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("init existing label", func(t *testing.T) {
		err := tok.Module.InitToken(ctx, tok.Label, other, other)
		if !errors.Is(err, hsm.ErrTokenExists) {
			t.Fatalf("err = %v, want ErrTokenExists", err)
		}
	})
	t.Run("init bad label", func(t *testing.T) {
		for _, label := range []string{"", strings.Repeat("x", 33), " padded"} {
			if err := tok.Module.InitToken(ctx, label, other, other); err == nil {
				t.Errorf("InitToken(%q) succeeded", label)
			}
		}
	})
	t.Run("open unknown label", func(t *testing.T) {
		_, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: "no-such-token", PIN: other})
		if !errors.Is(err, hsm.ErrTokenNotFound) {
			t.Fatalf("err = %v, want ErrTokenNotFound", err)
		}
		// It names the module asked and the tokens it has.
		if !strings.Contains(err.Error(), "(module /") || !strings.Contains(err.Error(), " has only ") || !strings.Contains(err.Error(), strconv.Quote(tok.Label)) {
			t.Errorf("err = %v, want the module's path and the test token's label", err)
		}
	})
	t.Run("open without PIN", func(t *testing.T) {
		if _, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: tok.Label}); err == nil {
			t.Fatal("OpenToken without a PIN succeeded")
		}
	})
	t.Run("wrong PIN", func(t *testing.T) {
		// Login state is per token per process: while the fixture's Token
		// is logged in, C_Login answers CKR_USER_ALREADY_LOGGED_IN without
		// checking the PIN. Closing its last session logs the token out.
		if err := tok.Token.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: tok.Label, PIN: other})
		if !errors.Is(err, hsm.ErrPINIncorrect) || !hsm.IsPKCS11Error(err, hsm.CKRPINIncorrect) {
			t.Fatalf("err = %v, want ErrPINIncorrect wrapping CKR_PIN_INCORRECT", err)
		}
		if !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") {
			t.Errorf("error %q does not name CKR_PIN_INCORRECT", err)
		}
		good, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: tok.Label, PIN: tok.PIN})
		if err != nil {
			t.Fatalf("right PIN after a wrong one: %v", err)
		}
		if err := good.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tok.Token.Ping(ctx); !errors.Is(err, hsm.ErrClosed) {
			t.Fatalf("Ping on a closed token: err = %v, want ErrClosed", err)
		}
	})
}

func TestPing(t *testing.T) {
	tok := hsmtest.NewToken(t)
	cases := []struct {
		name    string
		disrupt func() error
	}{
		{"healthy", func() error { return nil }},
		{"after C_CloseAllSessions", tok.Token.CloseAllSessionsForTest},
		{"after C_Logout", tok.Token.LogoutForTest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.disrupt(); err != nil {
				t.Fatal(err)
			}
			s0, l0, _ := tok.Token.RecoveriesForTest()
			if err := tok.Token.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
			s1, l1, _ := tok.Token.RecoveriesForTest()
			if tc.name != "healthy" && s1 == s0 && l1 == l0 {
				t.Error("Ping recovered from nothing: the disruption did not reach the pool")
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := tok.Token.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// TestPINRefusedOnce: a token that refuses the PIN on logging in again (its
// PIN was changed on the HSM, then the process logged out) is told of
// once, and no login is tried after it: an HSM locks a PIN after a few
// refusals, and every node sharing the token with it.
// TestPINNotGivenAway: the PIN is not tried when the token says it cannot
// be its PIN (a length outside ulMinPinLen..ulMaxPinLen), nor given to a
// token other than the one opened, found in its slot at a new login.
func TestPINNotGivenAway(t *testing.T) {
	tok := hsmtest.NewToken(t)
	for _, n := range []int{3, 256} { // SoftHSM2 takes 4 to 255
		pin, err := hsm.NewPIN([]byte(strings.Repeat("7", n)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.Module.OpenToken(t.Context(), hsm.TokenConfig{Label: tok.Label, PIN: pin}); !errors.Is(err, hsm.ErrPINLength) {
			t.Errorf("a PIN of %d bytes: %v, want ErrPINLength", n, err)
		}
	}
	refused := make(chan error, 1)
	opened, err := tok.Module.OpenToken(t.Context(), hsm.TokenConfig{Label: tok.Label, PIN: tok.PIN, PINRefused: func(err error) { refused <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	opened.SetSerialForTest("another token")
	if err := opened.LogoutForTest(); err != nil {
		t.Fatal(err)
	}
	if err := opened.Ping(t.Context()); !errors.Is(err, hsm.ErrTokenChanged) {
		t.Errorf("a login to the slot, now another token's: %v, want ErrTokenChanged", err)
	}
	select {
	case err := <-refused:
		t.Errorf("the PIN was tried: %v", err)
	default:
	}
}

func TestPINRefusedOnce(t *testing.T) {
	tok := hsmtest.NewToken(t)
	refused := make(chan error, 10)
	const sessions = 8
	watched, err := tok.Module.OpenToken(t.Context(), hsm.TokenConfig{Label: tok.Label, PIN: tok.PIN, MaxSessions: sessions,
		PINRefused: func(err error) { refused <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer watched.Close()
	// Every session of the pool open, so that each finds itself logged
	// out at once.
	var releases []func()
	for range sessions {
		release, err := watched.HoldSessionForTest()
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	for _, release := range releases {
		release()
	}
	if err := watched.SetPINForTest(string(tok.PIN.Bytes()), "changed-on-the-hsm"); err != nil {
		t.Fatal(err)
	}
	if err := watched.LogoutForTest(); err != nil {
		t.Fatal(err)
	}
	// Sessions logged out together try the PIN once between them.
	errs := make(chan error, sessions)
	for range sessions {
		go func() { errs <- watched.Ping(t.Context()) }()
	}
	tried := 0
	for range sessions {
		err := <-errs
		if !errors.Is(err, hsm.ErrPINIncorrect) {
			t.Fatalf("a ping after the PIN changed: %v, want ErrPINIncorrect", err)
		}
		if !strings.Contains(err.Error(), "not tried again") {
			tried++
		}
	}
	if tried != 1 {
		t.Errorf("%d logins tried with the refused PIN by %d sessions at once, want 1", tried, sessions)
	}
	select {
	case err := <-refused:
		if !errors.Is(err, hsm.ErrPINIncorrect) {
			t.Errorf("PINRefused told %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PINRefused was not told")
	}
	for range 5 {
		if err := watched.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "not tried again") {
			t.Fatalf("a later ping: %v, want no login tried", err)
		}
	}
	if len(refused) != 0 {
		t.Errorf("PINRefused told %d times more", len(refused))
	}
}
