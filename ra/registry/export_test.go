package registry

// SetWaiting has f called each time a lookup of h starts to wait before
// its next attempt.
func SetWaiting(h *HTTP, f func()) { h.waiting = f }
