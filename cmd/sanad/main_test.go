package main

import (
	"testing"

	"github.com/sanadpki/sanad/internal/testenv"
)

// TestTuneCMalloc: where the C library is glibc (Linux, as in CI) the trim
// threshold takes, and an operator's own setting for it, in GLIBC_TUNABLES
// or MALLOC_TRIM_THRESHOLD_, is left to rule.
func TestTuneCMalloc(t *testing.T) {
	if !canTuneCMalloc() {
		// A skip on a developer's machine without glibc; CI runs on Debian's.
		testenv.Missing(t, "the C library has no M_TRIM_THRESHOLD (not glibc)")
	}
	if !tuneCMalloc() {
		t.Error("M_TRIM_THRESHOLD did not take")
	}
	t.Run("GLIBC_TUNABLES", func(t *testing.T) {
		t.Setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576")
		if tuneCMalloc() {
			t.Error("GLIBC_TUNABLES sets the trim threshold, and tuneCMalloc overrode it")
		}
	})
	t.Run("MALLOC_TRIM_THRESHOLD_", func(t *testing.T) {
		t.Setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
		if tuneCMalloc() {
			t.Error("MALLOC_TRIM_THRESHOLD_ sets the trim threshold, and tuneCMalloc overrode it")
		}
	})
}
