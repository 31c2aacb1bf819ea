package main

import (
	"runtime"
	"testing"
)

// TestTuneCMalloc: on glibc (Linux, as in CI) the trim threshold takes,
// and an operator's own GLIBC_TUNABLES setting for it is left to rule.
func TestTuneCMalloc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's allocator is Linux's")
	}
	if !tuneCMalloc() {
		t.Error("M_TRIM_THRESHOLD did not take")
	}
	t.Setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576")
	if tuneCMalloc() {
		t.Error("GLIBC_TUNABLES sets the trim threshold, and tuneCMalloc overrode it")
	}
}
