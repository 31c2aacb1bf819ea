package status

// MalformedRequests are the parser's malformed cases, for the HTTP tests
// of package status_test.
var MalformedRequests = malformedRequests

// CacheEntries is how many entries the cache holds.
func (r *Responder) CacheEntries() int { return r.cache.len() }

// GetCacheEntries is how many parsed GET requests it keeps.
func (r *Responder) GetCacheEntries() int { return r.gets.len() }
