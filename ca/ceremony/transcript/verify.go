package transcript

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"
)

// Result is a transcript that Verify read.
type Result struct {
	// Lines are all lines in order, the signature line last.
	Lines []Line
	// SignerKeySHA256 is the lowercase hex SHA-256 of the signer's DER
	// SubjectPublicKeyInfo.
	SignerKeySHA256 string
	// SignerPublicKey is the key embedded in the signature line. Verify
	// proves only that this key signed; see SignedBy.
	SignerPublicKey crypto.PublicKey
	// Algorithm is one of the Alg constants.
	Algorithm string
	// SignedAt is the time of the signature line.
	SignedAt time.Time
}

// errUnterminated and errTooLong are readLine's verdicts on a line.
var (
	errUnterminated = errors.New("not terminated by a newline (bytes after the last line)")
	errTooLong      = fmt.Errorf("longer than %d bytes", maxLineBytes)
)

// Verify reads a transcript and checks it as the package doc specifies:
// every line parses strictly, seq runs 1…N without gaps, each prev is the
// SHA-256 of the line before, there is exactly one signature line and it is
// last, and its signature verifies with the embedded key. Errors name the
// first line that is wrong and wrap ErrBroken, ErrUnsigned or
// ErrBadSignature; an I/O error from r is returned wrapped as it is.
//
// On ErrUnsigned alone, the Result holds the lines read (an intact chain,
// say of an aborted ceremony) for diagnosis; nothing in it is attested. On
// any other error the Result is empty.
//
// Verify does not decide whom to trust: check the signer with
// Result.SignedBy.
func Verify(r io.Reader) (Result, error) {
	br := bufio.NewReader(r)
	var (
		res    Result
		prev   = zeroHash
		signed bool
	)
	for n := 1; ; n++ {
		raw, err := readLine(br)
		if err == io.EOF {
			break
		}
		if errors.Is(err, errUnterminated) || errors.Is(err, errTooLong) {
			return Result{}, fmt.Errorf("%w: line %d: %w", ErrBroken, n, err)
		}
		if err != nil {
			return Result{}, fmt.Errorf("read transcript line %d: %w", n, err)
		}
		if signed {
			return Result{}, fmt.Errorf("%w: line %d: follows the signature line (nothing may follow it)", ErrBroken, n)
		}
		ln, err := parseLine(raw)
		if err != nil {
			return Result{}, fmt.Errorf("%w: line %d: %w", ErrBroken, n, err)
		}
		if ln.Seq != n {
			return Result{}, fmt.Errorf("%w: line %d: seq is %d, want %d (lines dropped, inserted or reordered)", ErrBroken, n, ln.Seq, n)
		}
		if ln.Prev != prev {
			if n == 1 {
				return Result{}, fmt.Errorf("%w: line 1: prev is not 64 zeros (lines dropped before it)", ErrBroken)
			}
			return Result{}, fmt.Errorf("%w: line %d: prev does not match line %d (edited, dropped or reordered)", ErrBroken, n, n-1)
		}
		if ln.Step == stepSignature {
			if n == 1 {
				return Result{}, fmt.Errorf("%w: line 1: signature line with no steps before it", ErrBroken)
			}
			s, err := verifySignatureLine(ln, raw)
			if err != nil {
				return Result{}, fmt.Errorf("%w: line %d: %w", ErrBadSignature, n, err)
			}
			signed = true
			res.SignerKeySHA256, res.SignerPublicKey, res.Algorithm = s.keySHA256, s.pub, s.alg
			res.SignedAt = ln.Time
		}
		prev = ln.Hash
		res.Lines = append(res.Lines, ln)
	}
	switch {
	case len(res.Lines) == 0:
		return Result{}, fmt.Errorf("%w: empty transcript", ErrUnsigned)
	case !signed:
		return res, fmt.Errorf("%w: line %d is the last line and no signature line follows (ceremony not signed, or its signature line cut off)", ErrUnsigned, len(res.Lines))
	}
	return res, nil
}

// readLine returns the next line without its "\n", io.EOF at a clean end,
// errUnterminated if the input ends inside a line, and errTooLong if a line
// exceeds maxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLineBytes+1 {
			return nil, errTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, errUnterminated
		default:
			return nil, err
		}
	}
}

// SignedBy reports whether pub is the key that signed the transcript,
// comparing DER SubjectPublicKeyInfo. It fails with ErrUnsigned on a Result
// without a signer and with ErrWrongSigner on any other key.
func (r Result) SignedBy(pub crypto.PublicKey) error {
	if r.SignerPublicKey == nil {
		return ErrUnsigned
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("signed by: %w", err)
	}
	// Compare re-encoded keys, so that two encodings of one key agree.
	want, err := x509.MarshalPKIXPublicKey(r.SignerPublicKey)
	if err != nil {
		return fmt.Errorf("signed by: %w", err)
	}
	if !bytes.Equal(spki, want) {
		return fmt.Errorf("%w: transcript signed by key SHA-256 %s, not key SHA-256 %s",
			ErrWrongSigner, r.SignerKeySHA256, sha256Hex(spki))
	}
	return nil
}

// KeyFingerprints returns every "public_key_sha256" value, at any depth, in
// the data of the steps before the signature line, each once, in order of
// first appearance. Callers check that the signer is among the keys the
// ceremony created or used.
func (r Result) KeyFingerprints() []string {
	var out []string
	seen := make(map[string]bool)
	for _, ln := range r.Lines {
		if ln.Step == stepSignature {
			continue
		}
		walkMembers(ln.Data, func(_, key string, v any) {
			s, ok := v.(string)
			if key != "public_key_sha256" || !ok || seen[s] {
				return
			}
			seen[s] = true
			out = append(out, s)
		})
	}
	return out
}
