package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if b, err := Read("token file", write("ok", "s3cret\r\n", 0o600)); err != nil || string(b) != "s3cret" {
		t.Errorf("Read = %q, %v", b, err)
	}
	if b, err := Read("token file", write("owner-read", "s3cret", 0o400)); err != nil || string(b) != "s3cret" {
		t.Errorf("Read of a 0400 file = %q, %v", b, err)
	}
	for _, c := range []struct {
		path, want string
	}{
		{write("group", "s3cret", 0o640), "has mode 0640"},
		{write("world", "s3cret", 0o604), "has mode 0604"},
		{write("big", strings.Repeat("s", MaxSize+1), 0o600), "larger than 4096 bytes"},
		{dir, "is not a regular file"},
		{filepath.Join(dir, "none"), "no such file"},
	} {
		_, err := Read("token file", c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "token file") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Read(%s) = %v, want %q without the content", c.path, err, c.want)
		}
	}
}

// TestKeptSafe: a secret file that someone else could rewrite is refused:
// one in a directory group or others may write (without the sticky bit),
// also when reached through a symlink from a safe one, and, when this
// process is root and so can make one, a file another user owns.
func TestKeptSafe(t *testing.T) {
	base := t.TempDir()
	dir := func(name string, mode os.FileMode) string {
		t.Helper()
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	secret := func(d string) string {
		t.Helper()
		p := filepath.Join(d, "pin")
		if err := os.WriteFile(p, []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	safe, open, sticky := dir("safe", 0o755), dir("open", 0o777), dir("sticky", 0o777|os.ModeSticky)
	if _, err := Read("the PIN", secret(safe)); err != nil {
		t.Errorf("in a directory only its owner writes: %v", err)
	}
	if _, err := Read("the PIN", secret(sticky)); err != nil {
		t.Errorf("in a sticky directory: %v", err)
	}
	exposed := secret(open)
	if _, err := Read("the PIN", exposed); err == nil || !strings.Contains(err.Error(), "which group or others may write") {
		t.Errorf("in a directory others may write: %v", err)
	}
	link := filepath.Join(safe, "link")
	if err := os.Symlink(exposed, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("the PIN", link); err == nil || !strings.Contains(err.Error(), "which group or others may write") {
		t.Errorf("through a symlink into a directory others may write: %v", err)
	}
	safeLink := filepath.Join(sticky, "link")
	if err := os.Symlink(filepath.Join(safe, "pin"), safeLink); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("the PIN", safeLink); err != nil {
		t.Errorf("through a symlink to a file kept safe (as Kubernetes mounts secrets): %v", err)
	}
	if os.Geteuid() == 0 {
		others := secret(dir("others", 0o755))
		if err := os.Chown(others, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Read("the PIN", others); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534") {
			t.Errorf("a file another user owns: %v", err)
		}
		theirs := dir("theirs", 0o755)
		inTheirs := secret(theirs)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Read("the PIN", inTheirs); err == nil || !strings.Contains(err.Error(), "owned by uid 65534, who could replace it") {
			t.Errorf("a file in a directory another user owns: %v", err)
		}
	}
}
