// Package bearer guards HTTP handlers with a bearer token, for the hub's
// MCP endpoint and the agent's API alike.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
)

// Require serves next only to requests whose Authorization header is
// "Bearer <token>"; others get 401 with a WWW-Authenticate challenge and no
// body, and one log line. Digests are compared, in constant time, so the
// time taken says nothing about the token, not even its length. Paths in
// open are served without the token (health checks).
func Require(token string, logger *slog.Logger, next http.Handler, open ...string) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range open {
			if r.URL.Path == p {
				next.ServeHTTP(w, r)
				return
			}
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(r.Header.Get("Authorization"))))
		if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			logger.Info("refused: no valid bearer token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="wirescope"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
