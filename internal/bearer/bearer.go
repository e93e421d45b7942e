// Package bearer guards HTTP handlers with a bearer token, for the hub's
// MCP endpoint and the agent's API alike.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Require serves next only to requests whose Authorization header is
// "Bearer <token>"; others get 401 with a WWW-Authenticate challenge and no
// body, and one log line. The refusal comes before the request's body is
// read, and the connection is then closed (see Hangup). Digests are compared, in constant time,
// so the time taken says nothing about the token, not even its length.
// Paths in open are served without the token (health checks).
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
			Hangup(w)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Hangup makes the answer being written the connection's last, without
// waiting for what is left of the request's body: it sets Connection:
// close, so that net/http writes the answer at once, and sets the
// connection's read deadline HangupDelay from now, which bounds net/http's
// reading of the unread body after the answer. (Otherwise it reads up to
// 256 KiB of it before the answer and again after, which a client sending
// it slowly stretches for as long as it likes.) The delay leaves the client
// time to read the answer before the close, which may reset the
// connection. Call it before the header is written.
func Hangup(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(HangupDelay))
}

// HangupDelay is how long Hangup lets a connection read after the answer.
const HangupDelay = 500 * time.Millisecond
