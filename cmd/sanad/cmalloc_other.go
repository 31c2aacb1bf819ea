//go:build !linux || !cgo

package main

// tuneCMalloc leaves the C allocator alone where it is not glibc's.
func tuneCMalloc() bool { return false }

// canTuneCMalloc says the C allocator is not one tuneCMalloc knows.
func canTuneCMalloc() bool { return false }
