package proto

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
)

// DecodeBody undoes a gzip or deflate content coding for display, producing
// at most max+1 bytes (so the caller can tell the result was cut) however
// much the data expands. A body whose coding is unknown, or that does not
// decode, is returned as captured. partial reports that decoding stopped at
// an error (typically because only the start of the body was captured).
func DecodeBody(body []byte, encoding string, max int) (out []byte, partial bool) {
	var r io.Reader
	var err error
	switch encoding {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		// Servers send zlib-wrapped or raw deflate under this name.
		if r, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
			r, err = flate.NewReader(bytes.NewReader(body)), nil
		}
	default:
		return body, false
	}
	if err != nil {
		return body, false
	}
	out, err = io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil && len(out) == 0 {
		return body, false
	}
	return out, err != nil
}
