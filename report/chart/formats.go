package chart

// CheckFormats lower-cases, checks and de-duplicates chart file formats, so that a command
// can refuse a bad --chart-format before it reads or draws anything. No formats means all.
func CheckFormats(formats []string) ([]string, error) { return normFormats(formats) }
