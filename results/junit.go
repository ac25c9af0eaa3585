package results

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The JUnit XML subset that Jenkins (junit plugin) and GitLab (artifacts:reports:junit)
// both read: <testsuites> holding one <testsuite> of <testcase>s, a failing one with a
// <failure message=… type=…> child.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes c as JUnit XML: one test case per case × direction × metric that a
// threshold checks, failing when a check failed. A case no threshold checks becomes one
// passing test case, so that a comparison without thresholds is not an empty report (which
// Jenkins treats as an error).
func WriteJUnit(w io.Writer, c *Comparison) error {
	suite := junitSuite{Name: "vmstorbench compare", Time: "0"}
	suite.Properties = append(suite.Properties, junitProperty{"alpha", strconv.FormatFloat(c.Alpha, 'g', -1, 64)})
	for _, t := range c.Thresholds {
		suite.Properties = append(suite.Properties, junitProperty{"threshold", t.String()})
	}
	for _, cc := range c.Cases {
		class := "vmstorbench.compare." + junitClassPart(cc.Target())
		checked := len(cc.Rejected) > 0
		for _, k := range cc.Rejected {
			suite.Cases = append(suite.Cases, junitCase{ClassName: class, Name: cc.Workload() + " verify", Time: "0",
				Failure: &junitFailure{Message: k.Reason, Type: "verify-failed", Text: cc.Name() + "\n" + k.Reason}})
			suite.Failures++
		}
		for _, ch := range cc.Changes {
			if len(ch.Checks) == 0 {
				continue
			}
			checked = true
			tc := junitCase{ClassName: class, Name: cc.Workload() + " " + ch.Dir + " " + ch.Metric.Name, Time: "0",
				SystemOut: changeSummary(ch)}
			var reasons, terms []string
			for _, k := range ch.Checks {
				if k.Failed {
					reasons = append(reasons, k.Reason)
					terms = append(terms, k.Threshold.String())
				}
			}
			if len(reasons) > 0 {
				kind := "regression"
				if !ch.HasBase || !ch.HasCand {
					kind = "missing-data"
				}
				tc.Failure = &junitFailure{
					Message: strings.Join(reasons, "; "),
					Type:    kind,
					Text:    fmt.Sprintf("%s\nthresholds: %s\n%s", cc.Name(), strings.Join(terms, ", "), changeSummary(ch)),
				}
				suite.Failures++
			}
			suite.Cases = append(suite.Cases, tc)
		}
		if !checked {
			suite.Cases = append(suite.Cases, junitCase{ClassName: class, Name: cc.Workload() + " compared", Time: "0",
				SystemOut: "no threshold checks this case"})
		}
	}
	suite.Tests = len(suite.Cases)
	var notes []string
	for _, e := range c.Excluded {
		notes = append(notes, fmt.Sprintf("excluded %s run %s (%s): %s", e.Side, e.ID, e.Case, e.Error))
	}
	for _, t := range c.Unused {
		notes = append(notes, "threshold "+t.String()+" matched no metric of any case")
	}
	suite.SystemOut = strings.Join(notes, "\n")
	doc := junitSuites{Name: suite.Name, Tests: suite.Tests, Failures: suite.Failures, Time: "0", Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("results: write JUnit XML: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("results: write JUnit XML: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("results: write JUnit XML: %w", err)
	}
	return nil
}

// changeSummary is one line with both medians, the change and the verdict.
func changeSummary(ch *Change) string {
	side := func(name string, s Summary, ok bool) string {
		if !ok {
			return name + ": no data"
		}
		scale := ch.Metric.Scale
		return fmt.Sprintf("%s: median %s %s over %d run(s), range %s–%s", name,
			plainNumber(s.Median*scale), ch.Metric.Unit, s.N, plainNumber(s.Min*scale), plainNumber(s.Max*scale))
	}
	return fmt.Sprintf("%s %s: %s; %s; change %s, %s", ch.Dir, ch.Metric.Name,
		side("base", ch.Base, ch.HasBase), side("candidate", ch.Cand, ch.HasCand), FormatPercent(ch.Percent), ch.Verdict())
}

// plainNumber renders v with about four significant digits and never an exponent:
// 888700, 1234, 0.5675.
func plainNumber(v float64) string {
	decimals := 0
	if a := math.Abs(v); a > 0 && a < 1000 {
		decimals = min(9, 3-int(math.Floor(math.Log10(a))))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// junitClassPart makes a target name fit a JUnit class name: Jenkins splits class names
// at dots into packages, so the dots of host names and IP addresses become underscores.
func junitClassPart(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' {
			return '_'
		}
		return r
	}, s)
}
