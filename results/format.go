package results

import "strconv"

func formatFixed6(p float64) string { return strconv.FormatFloat(p, 'f', 6, 64) }
