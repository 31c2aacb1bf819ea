package hsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// DefaultModulePath returns the first SoftHSM2 PKCS#11 module found in the
// usual places of Debian, Ubuntu, Fedora/RHEL, Alpine, the BSDs and Homebrew.
func DefaultModulePath() (string, error) {
	candidates := []string{
		"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu, Alpine
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // Debian/Ubuntu multiarch
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // Debian/Ubuntu arm64
		"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora, RHEL
		"/usr/lib/pkcs11/libsofthsm2.so",                    // Fedora 32-bit, Arch
		"/usr/lib64/softhsm/libsofthsm2.so",                 // openSUSE
		"/usr/local/lib/softhsm/libsofthsm2.so",             // source builds, FreeBSD, Homebrew (Intel)
		"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // Homebrew (Apple silicon)
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("hsm: no SoftHSM2 PKCS#11 module in %s: install softhsm2 (apt-get install softhsm2) or give the module path",
		strings.Join(candidates, ", "))
}

// library is the process-wide state of one loaded PKCS#11 module. PKCS#11
// forces it: C_Initialize may be called once per process per module, the
// login state of a token is shared by all sessions of the process, and two
// callers picking the same free slot in C_InitToken would clobber each other.
// So every Module and Token of the same module file share one library,
// reference-counted, and C_Finalize runs only when the last one is closed and
// only if this package did the C_Initialize.
type library struct {
	key      string // resolved path, the key in libraries.byPath
	ctx      *pkcs11.Ctx
	finalize bool // we called C_Initialize successfully, so we C_Finalize
	refs     int  // guarded by libraries.mu

	initMu  sync.Mutex // serializes InitToken (choice of a free slot)
	loginMu sync.Mutex // serializes C_Login: login state is per token per process

	resMu    sync.Mutex
	reserved map[reservation]struct{} // labels and IDs being generated, per slot
}

// reservation is a label or ID claimed by a GenerateKey in progress, so that
// two concurrent generations cannot both pass the "does it exist" check.
type reservation struct {
	slot  uint
	kind  byte // 'l' label, 'i' CKA_ID
	value string
}

// libraries holds the loaded modules of this process; see library for why
// this state is process-wide.
var libraries = struct {
	mu     sync.Mutex
	byPath map[string]*library
}{byPath: make(map[string]*library)}

func acquireLibrary(path string) (*library, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("hsm: PKCS#11 module %s: %w", path, err)
	}
	key, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("hsm: PKCS#11 module %s: %w", path, err)
	}

	libraries.mu.Lock()
	defer libraries.mu.Unlock()
	if lib := libraries.byPath[key]; lib != nil {
		lib.refs++
		return lib, nil
	}
	ctx := pkcs11.New(key)
	if ctx == nil {
		return nil, fmt.Errorf("hsm: cannot load PKCS#11 module %s (not a PKCS#11 library, or missing dependencies)", path)
	}
	finalize := true
	if err := ctx.Initialize(); err != nil {
		if !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			ctx.Destroy()
			return nil, fmt.Errorf("hsm: C_Initialize %s: %w", path, err)
		}
		// Someone else in this process initialized the module; it is
		// theirs to finalize.
		finalize = false
	}
	lib := &library{key: key, ctx: ctx, finalize: finalize, refs: 1, reserved: make(map[reservation]struct{})}
	libraries.byPath[key] = lib
	return lib, nil
}

// retain adds a reference for a Token; it fails if the library is already
// finalized.
func (l *library) retain() bool {
	libraries.mu.Lock()
	defer libraries.mu.Unlock()
	if l.refs <= 0 {
		return false
	}
	l.refs++
	return true
}

// release drops one reference; the last one finalizes and unloads the module.
func (l *library) release() error {
	libraries.mu.Lock()
	defer libraries.mu.Unlock()
	l.refs--
	if l.refs > 0 {
		return nil
	}
	delete(libraries.byPath, l.key)
	var err error
	if l.finalize {
		if ferr := l.ctx.Finalize(); ferr != nil {
			err = fmt.Errorf("hsm: C_Finalize: %w", ferr)
		}
	}
	l.ctx.Destroy()
	return err
}

// reserve claims label and id on slot for a key generation in progress. The
// returned func releases the claim.
func (l *library) reserve(slot uint, label string, id []byte) (func(), error) {
	rl := reservation{slot: slot, kind: 'l', value: label}
	ri := reservation{slot: slot, kind: 'i', value: string(id)}
	l.resMu.Lock()
	defer l.resMu.Unlock()
	if _, busy := l.reserved[rl]; busy {
		return nil, fmt.Errorf("%w: label %q is being generated", ErrKeyExists, label)
	}
	if _, busy := l.reserved[ri]; busy {
		return nil, fmt.Errorf("%w: CKA_ID %x is being generated", ErrKeyExists, id)
	}
	l.reserved[rl] = struct{}{}
	l.reserved[ri] = struct{}{}
	return func() {
		l.resMu.Lock()
		delete(l.reserved, rl)
		delete(l.reserved, ri)
		l.resMu.Unlock()
	}, nil
}

// login performs C_Login as the normal user on sh. CKR_USER_ALREADY_LOGGED_IN
// counts as success: the login state is shared by every session of the
// process on that token.
func (l *library) login(sh pkcs11.SessionHandle, pin PIN) error {
	l.loginMu.Lock()
	defer l.loginMu.Unlock()
	err := l.ctx.Login(sh, pkcs11.CKU_USER, pin.string())
	switch {
	case err == nil, errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)):
		return nil
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
		return fmt.Errorf("%w: %w", ErrPINIncorrect, err)
	default:
		return err
	}
}

// Module is a loaded PKCS#11 module. It is safe for concurrent use.
type Module struct {
	path   string
	lib    *library
	closed atomic.Bool
}

// LoadModule loads and initializes the PKCS#11 module at path ("" means
// DefaultModulePath). Loading the same module twice in one process is fine:
// both Modules share the one initialization PKCS#11 allows, and the module is
// finalized when the last Module and Token using it are closed.
func LoadModule(path string) (*Module, error) {
	if path == "" {
		p, err := DefaultModulePath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	lib, err := acquireLibrary(path)
	if err != nil {
		return nil, err
	}
	return &Module{path: path, lib: lib}, nil
}

// Close releases the module. Tokens opened from it stay usable until they
// are closed themselves.
func (m *Module) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	return m.lib.release()
}

// Path returns the module's file path.
func (m *Module) Path() string { return m.path }

// TokenInfo describes a token present in a slot.
type TokenInfo struct {
	Label        string
	Serial       string
	Model        string
	Manufacturer string
	SlotID       uint
	Initialized  bool
}

// Tokens lists the tokens present in the module's slots.
func (m *Module) Tokens() ([]TokenInfo, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	return m.lib.tokens()
}

func (l *library) tokens() ([]TokenInfo, error) {
	slots, err := l.ctx.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("hsm: C_GetSlotList: %w", err)
	}
	infos := make([]TokenInfo, 0, len(slots))
	for _, slot := range slots {
		ti, err := l.ctx.GetTokenInfo(slot)
		if err != nil {
			return nil, fmt.Errorf("hsm: C_GetTokenInfo slot %d: %w", slot, err)
		}
		infos = append(infos, TokenInfo{
			Label:        ti.Label,
			Serial:       ti.SerialNumber,
			Model:        ti.Model,
			Manufacturer: ti.ManufacturerID,
			SlotID:       slot,
			Initialized:  ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0,
		})
	}
	return infos, nil
}

// checkToken reads the token in slot before a login with pin: it must be
// the one labelled label with serial (unless serial is ""), and the PIN's
// length within the token's bounds, or the PIN is not given: a token
// swapped into the slot would receive it, and a PIN of a length the token
// cannot take would only spend a try. It returns the token's serial.
func (l *library) checkToken(slot uint, label, serial string, pin PIN) (string, error) {
	ti, err := l.ctx.GetTokenInfo(slot)
	if err != nil {
		return "", fmt.Errorf("hsm: C_GetTokenInfo slot %d: %w", slot, err)
	}
	if ti.Label != label || serial != "" && ti.SerialNumber != serial {
		return "", fmt.Errorf("%w: slot %d held token %q (serial %q), and now %q (serial %q); the PIN was not given to it",
			ErrTokenChanged, slot, label, serial, ti.Label, ti.SerialNumber)
	}
	// CK_UNAVAILABLE_INFORMATION (all ones), or 0 for the maximum, is a
	// bound the token does not say.
	const unavailable = ^uint(0)
	if n := uint(pin.len()); ti.MinPinLen != unavailable && n < ti.MinPinLen ||
		ti.MaxPinLen != unavailable && ti.MaxPinLen > 0 && n > ti.MaxPinLen {
		return "", fmt.Errorf("%w: the PIN for token %q has %d bytes, and the token takes %d to %d; it was not tried",
			ErrPINLength, label, n, ti.MinPinLen, ti.MaxPinLen)
	}
	return ti.SerialNumber, nil
}

// findToken returns the slot of the initialized token labelled label.
func (l *library) findToken(label string) (uint, error) {
	infos, err := l.tokens()
	if err != nil {
		return 0, err
	}
	var found []uint
	var others []string
	for _, ti := range infos {
		switch {
		case ti.Initialized && ti.Label == label:
			found = append(found, ti.SlotID)
		case ti.Initialized:
			others = append(others, strconv.Quote(ti.Label))
		}
	}
	switch len(found) {
	case 0:
		// Which module was asked, and what it has: a wrong module or
		// configuration (SOFTHSM2_CONF) shows at once.
		has := "no initialized token"
		if len(others) > 0 {
			has = "only " + strings.Join(others, ", ")
		}
		return 0, fmt.Errorf("%w: %q (module %s has %s)", ErrTokenNotFound, label, l.key, has)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("hsm: %d tokens are labelled %q (slots %v): labels must be unique", len(found), label, found)
	}
}

// checkTokenLabel enforces what PKCS#11 can store: at most 32 bytes, padded
// with blanks (so leading or trailing blanks would not round-trip).
func checkTokenLabel(label string) error {
	switch {
	case label == "":
		return errors.New("hsm: empty token label")
	case len(label) > 32:
		return fmt.Errorf("hsm: token label %q is longer than 32 bytes", label)
	case strings.TrimSpace(label) != label:
		return fmt.Errorf("hsm: token label %q has leading or trailing blanks", label)
	}
	return nil
}

// InitToken initializes a token labelled label in a slot whose token is not
// initialized yet, sets its security officer PIN, and sets its user PIN
// (SO login, C_InitPIN). It refuses with ErrTokenExists if a token with that
// label exists. The PINs go to the module only, never to a command line.
func (m *Module) InitToken(ctx context.Context, label string, soPIN, userPIN PIN) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if err := checkTokenLabel(label); err != nil {
		return err
	}
	if !soPIN.valid() || !userPIN.valid() {
		return errors.New("hsm: InitToken needs a security officer PIN and a user PIN")
	}
	l := m.lib
	l.initMu.Lock()
	defer l.initMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hsm: init token %q: %w", label, err)
	}

	infos, err := l.tokens()
	if err != nil {
		return err
	}
	free, haveFree := uint(0), false
	for _, ti := range infos {
		if ti.Initialized && ti.Label == label {
			return fmt.Errorf("%w: %q (slot %d, serial %s)", ErrTokenExists, label, ti.SlotID, ti.Serial)
		}
		if !ti.Initialized && !haveFree {
			free, haveFree = ti.SlotID, true
		}
	}
	if !haveFree {
		return fmt.Errorf("hsm: init token %q: no slot with an uninitialized token", label)
	}
	if err := l.ctx.InitToken(free, soPIN.string(), label); err != nil {
		return fmt.Errorf("hsm: C_InitToken %q in slot %d: %w", label, free, err)
	}

	// SoftHSM2 moves a token to a new slot ID once it is initialized, so
	// find it again by label.
	slot, err := l.findToken(label)
	if err != nil {
		return fmt.Errorf("hsm: token %q after C_InitToken: %w", label, err)
	}
	sh, err := l.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("hsm: open session on new token %q: %w", label, err)
	}
	defer func() { _ = l.ctx.CloseSession(sh) }()
	l.loginMu.Lock()
	defer l.loginMu.Unlock()
	if err := l.ctx.Login(sh, pkcs11.CKU_SO, soPIN.string()); err != nil {
		return fmt.Errorf("hsm: security officer login on new token %q: %w", label, err)
	}
	if err := l.ctx.InitPIN(sh, userPIN.string()); err != nil {
		_ = l.ctx.Logout(sh)
		return fmt.Errorf("hsm: C_InitPIN on new token %q: %w", label, err)
	}
	if err := l.ctx.Logout(sh); err != nil {
		return fmt.Errorf("hsm: security officer logout on new token %q: %w", label, err)
	}
	return nil
}

// TokenConfig says which token to open and how to use it.
type TokenConfig struct {
	Label string
	PIN   PIN
	// MaxSessions bounds the session pool; 0 means 8.
	MaxSessions int
	// SessionWait is how long Sign waits for a free session before failing
	// with ErrNoSession; 0 means 10s.
	SessionWait time.Duration
	// PINRefused, when set, is told (once, in a goroutine of its own) that
	// the token refused the PIN on logging in again after it was opened:
	// its PIN changed, or it is another token. From then on the Token
	// tries no login until it is opened again, since an HSM locks its PIN
	// after a few refusals, and with it every node sharing the token.
	PINRefused func(error)
}

// Defaults of TokenConfig.
const (
	DefaultMaxSessions = 8
	DefaultSessionWait = 10 * time.Second
)

// OpenToken finds the initialized token labelled cfg.Label (ErrTokenNotFound),
// opens a first session and logs in as the user.
//
// PKCS#11 keeps one login state per token per process: if another Token of
// this process is already logged in to the same token, C_Login answers
// CKR_USER_ALREADY_LOGGED_IN without checking cfg.PIN, so a wrong PIN is
// detected only by the first Token opened.
func (m *Module) OpenToken(ctx context.Context, cfg TokenConfig) (*Token, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if cfg.Label == "" {
		return nil, errors.New("hsm: open token: empty label")
	}
	if !cfg.PIN.valid() {
		return nil, fmt.Errorf("hsm: open token %q: no PIN", cfg.Label)
	}
	if cfg.MaxSessions < 0 || cfg.SessionWait < 0 {
		return nil, fmt.Errorf("hsm: open token %q: negative MaxSessions or SessionWait", cfg.Label)
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.SessionWait == 0 {
		cfg.SessionWait = DefaultSessionWait
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hsm: open token %q: %w", cfg.Label, err)
	}
	slot, err := m.lib.findToken(cfg.Label)
	if err != nil {
		return nil, err
	}

	// The Token holds its own reference so the module stays initialized
	// while the Token is open, even if the Module is closed first.
	lib := m.lib
	if !lib.retain() {
		return nil, ErrClosed
	}
	t := newToken(lib, slot, cfg)
	if t.serial, err = lib.checkToken(slot, cfg.Label, "", cfg.PIN); err != nil {
		_ = lib.release()
		return nil, err
	}
	sh, err := lib.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		_ = lib.release()
		return nil, fmt.Errorf("hsm: open session on token %q: %w", cfg.Label, err)
	}
	if err := lib.login(sh, cfg.PIN); err != nil {
		_ = lib.ctx.CloseSession(sh)
		_ = lib.release()
		return nil, fmt.Errorf("hsm: login to token %q: %w", cfg.Label, err)
	}
	t.idle = append(t.idle, sh)
	return t, nil
}
