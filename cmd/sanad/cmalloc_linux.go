//go:build linux && cgo

package main

/*
#include <malloc.h>

// sanad_set_trim_threshold sets glibc's M_TRIM_THRESHOLD and says whether it
// took: 0 where the C library has no such setting (musl).
static int sanad_set_trim_threshold(int bytes) {
#ifdef M_TRIM_THRESHOLD
	return mallopt(M_TRIM_THRESHOLD, bytes);
#else
	return 0;
#endif
}

// sanad_has_trim_threshold says whether the C library has the setting.
static int sanad_has_trim_threshold(void) {
#ifdef M_TRIM_THRESHOLD
	return 1;
#else
	return 0;
#endif
}
*/
import "C"

import (
	"os"
	"strings"
)

// cTrimThreshold is how much free memory glibc's allocator keeps at the top
// of a heap before it gives pages back to the kernel.
//
// SoftHSM and SQLite allocate through the C library on whichever thread
// runs the cgo call, so glibc gives them per-thread heaps, and those heaps
// are trimmed past 128 KiB by default. Issuance freed a chunk past that about
// once per certificate, so each time the pages went back with madvise, the
// virtual machine flushed the TLBs of both cores, and the next allocation
// faulted them in again. `sanad bench enroll` made 5706 madvise calls for
// 5000 enrollments and 5000 certificates at the default, and 389 with 4 MiB
// (perf stat -e syscalls:sys_enter_madvise). CPU per enrollment fell from
// 1.74–1.99 ms to 1.58–1.80 ms in alternating runs.
// What it costs: each of glibc's heaps (at most eight per core) may keep up
// to 4 MiB it no longer uses. The bench's peak resident size went from
// 126 MB to 128 MB. Setting it also stops glibc from raising its mmap
// threshold (128 KiB) on its own; the bench's mmap and munmap calls stayed
// as they were (144 and 16).
const cTrimThreshold = 4 << 20

// tuneCMalloc sets cTrimThreshold, unless the environment already says
// how glibc should trim (GLIBC_TUNABLES, or the older
// MALLOC_TRIM_THRESHOLD_). It says whether the setting took.
func tuneCMalloc() bool {
	if _, set := os.LookupEnv("MALLOC_TRIM_THRESHOLD_"); set || strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.trim_threshold") {
		return false
	}
	return C.sanad_set_trim_threshold(C.int(cTrimThreshold)) == 1
}

// canTuneCMalloc says whether the C library has the setting (glibc's
// does, musl's not).
func canTuneCMalloc() bool { return C.sanad_has_trim_threshold() == 1 }
