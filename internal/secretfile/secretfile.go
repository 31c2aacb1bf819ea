// Package secretfile reads the secrets *_file settings name (an HSM PIN,
// a database DSN with its password, a bearer token, a key), each the same
// way: a regular file that group and others may not access, so a secret
// left readable by others is refused where it is noticed, not used.
package secretfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MaxSize is the largest secret file read.
const MaxSize = 4096

// Read reads the secret file at path (what says which, for errors): a
// regular file that group and others may not access, of at most MaxSize
// bytes, trailing CR and LF trimmed. Errors name the file, never its
// content. The caller clears the bytes when done.
func Read(what, path string) ([]byte, error) {
	b, err := ReadFile(what, path, MaxSize, true)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// keptSafe refuses a secret file someone else could rewrite: one owned by
// another user than this process's (root's aside, which only root
// changes), or in a directory (the one it resolves to, through symlinks)
// owned by another such user, or that group or others may write without
// the sticky bit, where it could be replaced.
func keptSafe(fi os.FileInfo, path string) error {
	if owner, ok := fileOwner(fi); ok && owner != os.Geteuid() && owner != 0 {
		return fmt.Errorf("is owned by uid %d, not this process's (%d): its owner could change it (chown it)", owner, os.Geteuid())
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(resolved)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("is in %s, which group or others may write (mode %04o): the file could be replaced there", dir, di.Mode().Perm())
	}
	if owner, ok := fileOwner(di); ok && owner != os.Geteuid() && owner != 0 {
		return fmt.Errorf("is in %s, owned by uid %d, who could replace it there", dir, owner)
	}
	return nil
}

// ReadFile reads the regular file at path, of at most max bytes, as it
// is. A secret file (a key) must be the owner's alone, as for Read; a
// file that is not (a certificate) may be anyone's. Errors name the file,
// never its content.
func ReadFile(what, path string, max int, secret bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is that of the
	// bytes read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); secret && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o: group and others must have no access (chmod 600 %s)", what, path, perm, path)
	}
	if secret {
		if err := keptSafe(fi, path); err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, path, err)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if len(b) > max {
		clear(b)
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, max)
	}
	return b, nil
}
