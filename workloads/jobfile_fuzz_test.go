package workloads

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseJobFile checks that no job file makes the parser panic, that errors name the
// file, and that every job it accepts is a valid workload. The seed corpus is in
// testdata/fuzz/FuzzParseJobFile.
func FuzzParseJobFile(f *testing.F) {
	f.Add("[global]\nbs=4k\n[j]\nrw=randread\n")
	f.Fuzz(func(t *testing.T, text string) {
		jobs, err := parseJobFile("fuzz.fio", strings.NewReader(text), lookupTestEnv)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.fio") {
				t.Errorf("error does not name the file: %v", err)
			}
		}
		for _, j := range jobs {
			w := j.Workload
			if err := w.Validate(); err != nil {
				t.Errorf("[%s] accepted but invalid: %v", j.Section, err)
			}
			if !reflect.DeepEqual(w, w.Defaults()) {
				t.Errorf("[%s] defaults not filled in: %+v", j.Section, w)
			}
			for name := range j.Options {
				if o := lookupOption(name); o == nil || o.names[0] != name {
					t.Errorf("[%s] option recorded under a non-canonical name %q", j.Section, name)
				}
			}
			_ = w.Describe()
		}
		// The same text as command-line options goes through the same table.
		if w, err := ParseOptions(strings.Fields(text)); err == nil {
			if err := w.Validate(); err != nil {
				t.Errorf("options accepted but invalid: %v", err)
			}
		}
	})
}
