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
