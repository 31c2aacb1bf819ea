package ca

// FillKeyIDsInBatches is FillKeyIDs in batches of the size given, for a
// test to page through a few rows.
var FillKeyIDsInBatches = fillKeyIDs
