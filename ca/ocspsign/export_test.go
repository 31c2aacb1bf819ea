package ocspsign

// ArchiveCutoffForTest is archiveCutoffOf.
var ArchiveCutoffForTest = archiveCutoffOf
