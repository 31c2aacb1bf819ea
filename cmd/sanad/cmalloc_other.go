//go:build !linux || !cgo

package main

// tuneCMalloc leaves the C allocator alone where it is not glibc's.
func tuneCMalloc() bool { return false }
