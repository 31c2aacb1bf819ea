package transcript

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Writer appends the lines of one transcript. It is safe for concurrent use,
// though a ceremony is a sequence and usually has one writer goroutine.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
	now  func() time.Time

	seq    int    // seq of the last line written; 0 before the first
	prev   string // hash of the last line written
	closed bool
	err    error // the first write failure; the Writer refuses to go on
}

// Create creates a new transcript at path, which must not exist: a
// transcript is never overwritten (the error then wraps fs.ErrExist). The
// file is 0644 before the umask (transcripts are public records), and the
// directory is fsynced so the file's existence survives a crash. now is the
// clock that stamps every line.
func Create(path string, now func() time.Time) (*Writer, error) {
	if now == nil {
		return nil, errors.New("create transcript: nil clock")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create transcript: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		// The file is ours, new and empty: remove it so that a retry
		// does not find it.
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create transcript %s: %w", path, err)
	}
	return &Writer{f: f, path: path, now: now, prev: zeroHash}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}

// Append records one ceremony step. data is any JSON-encodable value whose
// encoding is an object (nil gives {}); it is stored in canonical form.
// The line is written and fsynced before Append returns. Append refuses
// data that looks like it holds a secret (ErrSecret), and fails with
// ErrClosed after Sign or Close.
func (w *Writer) Append(step string, data any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return fmt.Errorf("append %q: %w", step, err)
	}
	if step == stepSignature || !validStep(step) {
		return fmt.Errorf("%w: %q (1 to %d characters of [a-z0-9_-] starting with a letter; %q is reserved)",
			ErrInvalidStep, step, maxStepLen, stepSignature)
	}
	if isPrivateKey(data) {
		return fmt.Errorf("append %q: %w: data is a %T", step, ErrSecret, data)
	}
	canon, err := canonicalData(data)
	if err != nil {
		return fmt.Errorf("append %q: %w", step, err)
	}
	seq := w.seq + 1
	line, err := encodeLine(seq, w.now(), step, canon, w.prev)
	if err != nil {
		return fmt.Errorf("append %q: %w: %w", step, ErrInvalidData, err)
	}
	// Write only what Verify accepts: the same parser checks the line.
	if _, err := parseLine(line); err != nil {
		return fmt.Errorf("append %q: %w: %w", step, ErrInvalidData, err)
	}
	if err := w.writeLine(line); err != nil {
		return fmt.Errorf("append %q as seq %d: %w", step, seq, err)
	}
	w.seq, w.prev = seq, sha256Hex(line)
	return nil
}

// Sign appends the signature line, signed by signer over the chain head
// (package doc), and closes the transcript. The key must be ECDSA P-256,
// ECDSA P-384 or RSA of at least 2048 bits. The signature is checked with
// the signer's public key before anything is written; if signing fails,
// nothing is written and the Writer stays open, so Sign may be retried.
func (w *Writer) Sign(signer crypto.Signer) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return fmt.Errorf("sign transcript: %w", err)
	}
	if w.seq == 0 {
		return fmt.Errorf("sign transcript: %w", ErrNoSteps)
	}
	seq := w.seq + 1
	line, err := signatureLine(signer, rand.Reader, seq, w.now(), w.prev)
	if err != nil {
		return fmt.Errorf("sign transcript: %w", err)
	}
	if err := w.writeLine(line); err != nil {
		return fmt.Errorf("sign transcript: write seq %d: %w", seq, err)
	}
	w.seq, w.prev = seq, sha256Hex(line)
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("sign transcript: close: %w", err)
	}
	return nil
}

// Close closes the transcript without signing it: Verify then reports it
// as unsigned (ErrUnsigned). Close after Sign, or a second Close, does
// nothing, so "defer w.Close()" is safe.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close transcript: %w", err)
	}
	return nil
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return fmt.Errorf("%w: %w", ErrWriteFailed, w.err)
	}
	return nil
}

// writeLine writes line and its "\n" in one write and fsyncs. A failure is
// remembered: the file may now end in part of a line, and appending more
// would hide where.
func (w *Writer) writeLine(line []byte) error {
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := w.f.Write(buf); err != nil {
		w.err = err
		return fmt.Errorf("write: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		w.err = err
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}
