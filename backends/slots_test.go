package backends

import "testing"

func TestSlots(t *testing.T) {
	s := NewSlots[int](3)
	if s.Len() != 3 || s.InFlight() != 0 {
		t.Fatalf("new: len %d, in flight %d", s.Len(), s.InFlight())
	}
	var taken []int
	for i := 0; i < 3; i++ {
		k, item, ok := s.Take()
		if !ok || k != i {
			t.Fatalf("take %d: slot %d, ok %v (slots are handed out from 0)", i, k, ok)
		}
		*item = 10 + k
		taken = append(taken, k)
	}
	if _, _, ok := s.Take(); ok || s.InFlight() != 3 {
		t.Fatalf("take from full slots: ok %v, in flight %d", ok, s.InFlight())
	}
	s.Put(taken[1])
	k, item, ok := s.Take()
	if !ok || k != taken[1] || *item != 11 || s.At(k) != item {
		t.Fatalf("after Put(%d): slot %d (item %d), ok %v: want the slot just freed, its item as left", taken[1], k, *item, ok)
	}
	for _, k := range []int{0, 1, 2} {
		s.Put(k)
	}
	if s.InFlight() != 0 {
		t.Errorf("all put back: in flight %d", s.InFlight())
	}
}
