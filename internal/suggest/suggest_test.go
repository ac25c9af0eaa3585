package suggest

import "testing"

func TestNearest(t *testing.T) {
	known := []string{"iodepth", "numjobs", "runtime", "ramp_time"}
	for _, tc := range []struct{ in, want string }{
		{"iodepht", "iodepth"},
		{"numjob", "numjobs"},
		{"runtim", "runtime"},
		{"completely_different", ""},
		{"", ""},
	} {
		if got := Nearest(tc.in, known); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
