package backends

// Slots are the I/Os a Queue has in flight, each in a slot of its own (the slot's index
// travels with the I/O's calls or commands, so a reply finds its I/O without a map). Submit
// takes a slot, the I/O's completion gives it back. Make it with NewSlots; a Queue uses it
// from its one goroutine, so it has no lock.
type Slots[T any] struct {
	items []T
	free  []int // the slots not in flight; the most recently freed (cache-warm) on top
}

// NewSlots returns n slots, none in flight.
func NewSlots[T any](n int) Slots[T] {
	s := Slots[T]{items: make([]T, n), free: make([]int, n)}
	for i := range s.free {
		s.free[i] = n - 1 - i // slot 0 is taken first
	}
	return s
}

// Take takes a free slot and returns its index and item (as the slot's last I/O left it),
// or ok false when every slot is in flight.
func (s *Slots[T]) Take() (k int, item *T, ok bool) {
	n := len(s.free)
	if n == 0 {
		return 0, nil, false
	}
	k = s.free[n-1]
	s.free = s.free[:n-1]
	return k, &s.items[k], true
}

// Put gives slot k back.
func (s *Slots[T]) Put(k int) { s.free = append(s.free, k) }

// At returns slot k's item.
func (s *Slots[T]) At(k int) *T { return &s.items[k] }

// InFlight returns how many slots are taken.
func (s *Slots[T]) InFlight() int { return len(s.items) - len(s.free) }

// Len returns the number of slots: the queue's depth.
func (s *Slots[T]) Len() int { return len(s.items) }
