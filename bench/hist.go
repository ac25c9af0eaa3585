package bench

import (
	"encoding/base64"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// encodeHist stores a histogram in the result as base64 of HdrHistogram's V2 compressed form.
func encodeHist(h *hdr.Histogram) (string, error) {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
