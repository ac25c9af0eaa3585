package migrate

// CorruptDestinationAt makes the image check overwrite the block at off in the destination
// image before it compares (so that a test sees a differing block reported); the returned
// function undoes it.
func CorruptDestinationAt(off int64) func() {
	testCorruptDestination = off
	return func() { testCorruptDestination = -1 }
}

// OnDiskLink hands the disk link's stop function to f when a run starts the link; the
// returned function undoes it.
func OnDiskLink(f func(stop func())) func() {
	testDiskLinkStarted = f
	return func() { testDiskLinkStarted = nil }
}
