package migrate

// CorruptDestinationAt makes the image check overwrite the block at off in the destination
// image before it compares (so that a test sees a differing block reported); the returned
// function undoes it.
func CorruptDestinationAt(off int64) func() {
	testCorruptDestination = off
	return func() { testCorruptDestination = -1 }
}
