//go:build !linux

package tlslib

import "errors"

// Inspect reads /proc: it works on Linux only.
func Inspect(pid int) ([]Target, error) {
	return nil, errors.New("tlslib: Inspect needs Linux's /proc")
}
