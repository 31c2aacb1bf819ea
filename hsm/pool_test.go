package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// signAndVerify signs a fresh digest with k and checks it.
func signAndVerify(ctx context.Context, k *hsm.Key, msg string) error {
	h := crypto.SHA256.New()
	h.Write([]byte(msg))
	digest := h.Sum(nil)
	sig, err := k.SignContext(ctx, digest, crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest, sig) {
		return fmt.Errorf("signature over %q does not verify", msg)
	}
	return nil
}

func TestConcurrentSign(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := t.Context()
	if _, err := tok.Token.GenerateKey(ctx, hsm.KeySpec{Label: "ocsp", Type: hsm.ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	// A second Token on the same token, with a pool much smaller than the
	// number of signers.
	small, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: tok.Label, PIN: tok.PIN, MaxSessions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	k, err := small.FindKey(ctx, "ocsp")
	if err != nil {
		t.Fatal(err)
	}

	const signers = 64
	var wg sync.WaitGroup
	errs := make(chan error, signers)
	for i := range signers {
		wg.Go(func() {
			for j := range 4 {
				if err := signAndVerify(ctx, k, fmt.Sprintf("signer %d message %d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRecovery(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := t.Context()
	k, err := tok.Token.GenerateKey(ctx, hsm.KeySpec{Label: "issuing", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		disrupt func() error
	}{
		{"C_CloseAllSessions", tok.Token.CloseAllSessionsForTest},
		{"C_Logout", tok.Token.LogoutForTest},
		{"C_CloseAllSessions then C_Logout", func() error {
			return errors.Join(tok.Token.CloseAllSessionsForTest(), tok.Token.LogoutForTest())
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Fill the pool with several sessions, so that later calls
			// meet stale sessions one after another.
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					if err := signAndVerify(ctx, k, fmt.Sprintf("warm %d", i)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()

			if err := tc.disrupt(); err != nil {
				t.Fatal(err)
			}
			if in, err := tok.Token.LoggedInForTest(); err != nil || in {
				t.Fatalf("after %s: logged in %v, %v; want logged out", tc.name, in, err)
			}
			s0, l0, h0 := tok.Token.RecoveriesForTest()
			for i := range 10 {
				if err := signAndVerify(ctx, k, fmt.Sprintf("after %s %d", tc.name, i)); err != nil {
					t.Fatalf("sign %d after %s: %v", i, tc.name, err)
				}
			}
			s1, l1, h1 := tok.Token.RecoveriesForTest()
			t.Logf("recovered %d lost sessions, %d logouts, %d stale key handles", s1-s0, l1-l0, h1-h0)
			if s1-s0+l1-l0+h1-h0 == 0 {
				t.Error("signing recovered from nothing: the disruption did not reach the pool")
			}
		})
	}
}

func TestSessionWait(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := t.Context()
	if _, err := tok.Token.GenerateKey(ctx, hsm.KeySpec{Label: "k", Type: hsm.ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	// held opens the token with one session, waiting at most wait for it,
	// and holds that session: the pool, key "k" of it, and the release.
	held := func(t *testing.T, wait time.Duration) (*hsm.Token, *hsm.Key, func()) {
		t.Helper()
		pool, err := tok.Module.OpenToken(ctx, hsm.TokenConfig{Label: tok.Label, PIN: tok.PIN, MaxSessions: 1, SessionWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		k, err := pool.FindKey(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		release, err := pool.HoldSessionForTest()
		if err != nil {
			t.Fatal(err)
		}
		return pool, k, release
	}
	one, k, release := held(t, 50*time.Millisecond)

	t.Run("pool exhausted", func(t *testing.T) {
		if err := signAndVerify(ctx, k, "x"); !errors.Is(err, hsm.ErrNoSession) {
			t.Fatalf("err = %v, want ErrNoSession", err)
		}
	})
	t.Run("context cancelled while waiting", func(t *testing.T) {
		// A pool of its own that waits a minute, so that only the cancel
		// can end the wait, however late it comes on a loaded machine.
		_, lk, releaseLong := held(t, time.Minute)
		defer releaseLong()
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		if err := signAndVerify(cctx, lk, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("session returned", func(t *testing.T) {
		release()
		if err := signAndVerify(ctx, k, "x"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("token closed", func(t *testing.T) {
		if err := one.Close(); err != nil {
			t.Fatal(err)
		}
		if err := signAndVerify(ctx, k, "x"); !errors.Is(err, hsm.ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
		// The fixture's Token on the same token is unaffected.
		if err := tok.Token.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
