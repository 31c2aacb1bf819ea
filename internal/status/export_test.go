package status

// MalformedRequests are the parser's malformed cases, for the HTTP tests
// of package status_test.
var MalformedRequests = malformedRequests
