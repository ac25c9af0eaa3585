package schedyield

import (
	"testing"
	"time"
)

func TestYielderMaybe(t *testing.T) {
	tests := []struct {
		name  string
		since time.Duration // time since the last yield; 0: never yielded
		want  bool
	}{
		{"never yielded", 0, true},
		{"just yielded", time.Millisecond, false},
		{"Every ago", Every, true},
		{"long ago", time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var y Yielder
			if tt.since > 0 {
				y.last = time.Now().Add(-tt.since)
			}
			if got := y.Maybe(); got != tt.want {
				t.Fatalf("Maybe() = %v, want %v", got, tt.want)
			}
			if y.Maybe() {
				t.Fatal("a second Maybe() right after the first yielded again")
			}
		})
	}
}
