package pinshare

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// WriteShareFile writes s to a new file at path, mode 0600. It refuses to
// overwrite anything (the error wraps fs.ErrExist) and to write a share that
// ParseShare would not read back. The file is synced before it is closed;
// if writing fails, the partial file is removed.
func WriteShareFile(path string, s Share) error {
	if _, err := s.check(); err != nil {
		return fmt.Errorf("pinshare: write share file %s: %w", path, err)
	}
	// O_EXCL also refuses a symbolic link at path, even a dangling one.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("pinshare: write share file: %w", err)
	}
	_, err = f.Write(s.MarshalFile())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// O_EXCL made the file ours, so removing it removes nothing else.
		return errors.Join(fmt.Errorf("pinshare: write share file: %w", err), os.Remove(path))
	}
	return nil
}

// ReadShareFile reads and parses (ParseShare) the share file at path. Share
// files travel on removable media whose file modes mean little, so their mode
// is not checked, except for a one-of-one share, which holds the PIN in the
// clear: like hsm.PINFromFile, it is refused if group or others may access it.
func ReadShareFile(path string) (Share, error) {
	f, err := os.Open(path)
	if err != nil {
		return Share{}, fmt.Errorf("pinshare: share file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is that of the
	// bytes read.
	fi, err := f.Stat()
	if err != nil {
		return Share{}, fmt.Errorf("pinshare: share file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Share{}, fmt.Errorf("pinshare: share file %s is not a regular file", path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxShareFile+1))
	if err != nil {
		return Share{}, fmt.Errorf("pinshare: read share file %s: %w", path, err)
	}
	defer clear(raw)
	s, err := ParseShare(raw)
	if err != nil {
		return Share{}, fmt.Errorf("share file %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); s.Total == 1 && perm&0o077 != 0 {
		return Share{}, fmt.Errorf("pinshare: share file %s holds a one-of-one share (the PIN itself) and has mode %04o: group and others must have no access (chmod 600 %s)", path, perm, path)
	}
	return s, nil
}
