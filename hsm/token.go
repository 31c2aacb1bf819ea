package hsm

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// Token is an open, logged-in token with a bounded pool of sessions. It is
// safe for concurrent use.
//
// The pool is a semaphore (sem, one slot per session that may be borrowed)
// and a stack of idle sessions. Sessions are opened lazily and reused most
// recently used first, so a single signer keeps using one warm session.
type Token struct {
	lib   *library
	p11   *pkcs11.Ctx // lib.ctx, kept here for the hot path
	slot  uint
	label string
	// serial is the token's serial number as it was opened: a login checks
	// that the slot still holds it (library.checkToken).
	serial string
	pin    PIN
	wait   time.Duration // how long Sign waits for a session

	sem  chan struct{} // a send borrows a session slot, a receive returns it
	done chan struct{} // closed by Close, wakes waiters

	mu     sync.Mutex
	idle   []pkcs11.SessionHandle // LIFO; cap is MaxSessions, so append never allocates
	closed bool

	// recovered counts recoveries by kind (index: bit number of recovery),
	// for tests and, later, metrics.
	recovered [3]atomic.Uint64

	// refused is the token's refusal of the PIN on logging in again, once
	// it happened: no login is tried after it (TokenConfig.PINRefused).
	// loginMu makes checking it and logging in one step, so that sessions
	// logged out together try the PIN once between them.
	loginMu    sync.Mutex
	refused    atomic.Pointer[error]
	pinRefused func(error)
}

func newToken(lib *library, slot uint, cfg TokenConfig) *Token {
	return &Token{
		lib:   lib,
		p11:   lib.ctx,
		slot:  slot,
		label: cfg.Label,
		pin:   cfg.PIN,
		wait:  cfg.SessionWait,
		sem:   make(chan struct{}, cfg.MaxSessions),
		done:  make(chan struct{}),
		idle:  make([]pkcs11.SessionHandle, 0, cfg.MaxSessions),

		pinRefused: cfg.PINRefused,
	}
}

// Label returns the token's label.
func (t *Token) Label() string { return t.label }

// Close waits for the sessions in use to come back, then closes every
// session of the pool and releases the module. Operations after Close fail
// with ErrClosed. Close is idempotent.
func (t *Token) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.mu.Unlock()

	// Take every slot of the semaphore: this waits for borrowed sessions
	// to be returned, so no PKCS#11 call is in flight after this loop.
	for range cap(t.sem) {
		t.sem <- struct{}{}
	}
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()

	var errs []error
	for _, sh := range idle {
		if err := t.p11.CloseSession(sh); err != nil && classify(err) != recoverSession {
			errs = append(errs, fmt.Errorf("hsm: close session on token %q: %w", t.label, err))
		}
	}
	if err := t.lib.release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// acquire borrows a session, waiting at most wait (0: as long as ctx allows)
// for one to be free.
func (t *Token) acquire(ctx context.Context, wait time.Duration) (pkcs11.SessionHandle, error) {
	select {
	case t.sem <- struct{}{}:
	default:
		if err := t.waitForSlot(ctx, wait); err != nil {
			return 0, err
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.sem
		return 0, fmt.Errorf("token %q: %w", t.label, ErrClosed)
	}
	if n := len(t.idle); n > 0 {
		sh := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return sh, nil
	}
	t.mu.Unlock()
	sh, err := t.openSession()
	if err != nil {
		<-t.sem
		return 0, err
	}
	return sh, nil
}

// waitForSlot is the slow path of acquire: every session is in use.
func (t *Token) waitForSlot(ctx context.Context, wait time.Duration) error {
	var timeout <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-t.done:
		return fmt.Errorf("token %q: %w", t.label, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("hsm: waiting for a session on token %q: %w", t.label, ctx.Err())
	case <-timeout:
		return fmt.Errorf("%w on token %q within %s (%d sessions busy)", ErrNoSession, t.label, wait, cap(t.sem))
	}
}

// release returns a healthy session to the pool.
func (t *Token) release(sh pkcs11.SessionHandle) {
	t.mu.Lock()
	t.idle = append(t.idle, sh)
	t.mu.Unlock()
	<-t.sem
}

// openSession opens a read/write session and makes sure the token is logged
// in (a new session of a process that was logged out starts public).
func (t *Token) openSession() (pkcs11.SessionHandle, error) {
	sh, err := t.p11.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("hsm: open session on token %q: %w", t.label, err)
	}
	if err := t.ensureLogin(sh); err != nil {
		_ = t.p11.CloseSession(sh)
		return 0, err
	}
	return sh, nil
}

// ensureLogin logs in unless sh is already in a user state.
func (t *Token) ensureLogin(sh pkcs11.SessionHandle) error {
	si, err := t.p11.GetSessionInfo(sh)
	if err != nil {
		return fmt.Errorf("hsm: C_GetSessionInfo on token %q: %w", t.label, err)
	}
	if si.State == pkcs11.CKS_RO_USER_FUNCTIONS || si.State == pkcs11.CKS_RW_USER_FUNCTIONS {
		return nil
	}
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	if refused := t.refused.Load(); refused != nil {
		return fmt.Errorf("hsm: login to token %q: not tried again, the token refused the PIN (%w); open it again with the right PIN", t.label, *refused)
	}
	if _, err := t.lib.checkToken(t.slot, t.label, t.serial, t.pin); err != nil {
		return err
	}
	if err := t.lib.login(sh, t.pin); err != nil {
		err = fmt.Errorf("hsm: login to token %q: %w", t.label, err)
		// A wrong PIN only: a locked one spends no tries, and an
		// operator's unlock lets the next login through.
		if errors.Is(err, ErrPINIncorrect) {
			t.refused.Store(&err)
			if t.pinRefused != nil {
				go t.pinRefused(err)
			}
		}
		return err
	}
	return nil
}

// recovery names a way to recover from a failed PKCS#11 call.
type recovery uint8

const (
	recoverSession recovery = 1 << iota // session gone: open another
	recoverLogin                        // logged out: log in again
	recoverHandle                       // key handle stale: find the key again by CKA_ID
)

// classify maps a PKCS#11 error to the recovery that may fix it, or 0.
func classify(err error) recovery {
	var rv pkcs11.Error
	if !errors.As(err, &rv) {
		return 0
	}
	switch rv {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		// An operation left active (an earlier call died half way) makes
		// the session useless for the next one: replace it.
		pkcs11.CKR_OPERATION_ACTIVE:
		return recoverSession
	case pkcs11.CKR_USER_NOT_LOGGED_IN:
		return recoverLogin
	case pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID:
		return recoverHandle
	}
	return 0
}

// do runs op on a borrowed session. When op fails in a way the HSM can
// recover from — session closed, token logged out, key handle invalidated —
// do recovers and runs op again; each kind of recovery is tried at most once
// per call, so after C_CloseAllSessions one call may reopen a session, log
// in and re-find the key. key may be nil when op uses no key handle.
//
// op returns raw PKCS#11 errors (so they can be classified); do returns
// them unwrapped too, and the caller adds its context.
func (t *Token) do(ctx context.Context, wait time.Duration, key *Key, op func(pkcs11.SessionHandle) error) error {
	sh, err := t.acquire(ctx, wait)
	if err != nil {
		return err
	}
	var tried recovery
	for {
		err = op(sh)
		if err == nil {
			t.release(sh)
			return nil
		}
		r := classify(err)
		if r == 0 || tried&r != 0 || (r == recoverHandle && key == nil) {
			t.release(sh)
			return err
		}
		tried |= r
		t.recovered[bits.TrailingZeros8(uint8(r))].Add(1)
		var rerr error
		switch r {
		case recoverSession:
			_ = t.p11.CloseSession(sh) // it is already gone or useless
			sh, rerr = t.openSession()
			if rerr != nil {
				<-t.sem // the slot, without a session
				return fmt.Errorf("%w; recovering: %w", err, rerr)
			}
		case recoverLogin:
			rerr = t.ensureLogin(sh)
		case recoverHandle:
			rerr = key.refind(sh)
		}
		if rerr != nil {
			t.release(sh)
			return fmt.Errorf("%w; recovering: %w", err, rerr)
		}
	}
}

// Ping checks that the token answers and the pool can hand out a logged-in
// session, recovering the way every operation does. Meant for readiness
// probes: like Sign it waits at most TokenConfig.SessionWait for a session,
// so a pool kept busy that long reports ErrNoSession.
func (t *Token) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hsm: ping token %q: %w", t.label, err)
	}
	err := t.do(ctx, t.wait, nil, func(sh pkcs11.SessionHandle) error {
		si, err := t.p11.GetSessionInfo(sh)
		if err != nil {
			return err
		}
		if si.State != pkcs11.CKS_RO_USER_FUNCTIONS && si.State != pkcs11.CKS_RW_USER_FUNCTIONS {
			// Report it the way a signing call would, so do logs in again.
			return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hsm: ping token %q: %w", t.label, err)
	}
	return nil
}

// findObjects returns up to max handles of objects matching template.
func (t *Token) findObjects(sh pkcs11.SessionHandle, template []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	if err := t.p11.FindObjectsInit(sh, template); err != nil {
		return nil, err
	}
	found, _, err := t.p11.FindObjects(sh, max)
	ferr := t.p11.FindObjectsFinal(sh)
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	return found, nil
}
