package redact

import "strings"

// Text returns s with the secrets it holds masked:
//
//   - the value of a secret-named parameter, key=value, in a query string,
//     a form body, a header (Location, Refresh, Referer …) or any other
//     text; the value ends at & ; # a quote, a backslash, <, > or white
//     space, and a quoted value ends at its closing quote;
//   - the string value of a secret-named JSON key ("password": "…");
//   - the userinfo of a URL (scheme://user:password@host);
//   - the same parameters in a URL that is itself a parameter's value,
//     percent-encoded once (?next=%2Fcb%3Fcode%3Dabc).
//
// Key names match in any case, ignoring separators (_ - . [ ] %), so
// PASSWORD, Pass_Word and user[password] are all secret names. Only
// values are masked. Text returns s itself, without allocating, when it
// masks nothing, and Text(Text(s)) == Text(s).
func Text(s string) string {
	r, _ := text(s)
	return r
}

// text is Text, also reporting whether s is unchanged.
func text(s string) (string, bool) {
	var w writer
	eq, colon, enc := strings.IndexByte(s, '='), strings.IndexByte(s, ':'), indexEnc(s, 0)
	for eq >= 0 || colon >= 0 || enc >= 0 {
		var next int
		switch {
		case eq >= 0 && (colon < 0 || eq < colon) && (enc < 0 || eq < enc):
			next = w.param(s, eq)
		case colon >= 0 && (enc < 0 || colon < enc):
			next = w.colon(s, colon)
		default:
			next = w.encParam(s, enc)
		}
		eq, colon = indexFrom(s, '=', eq, next), indexFrom(s, ':', colon, next)
		if enc >= 0 && enc < next {
			enc = indexEnc(s, next)
		}
	}
	if w.b == nil {
		return s, true
	}
	w.b = append(w.b, s[w.last:]...)
	return string(w.b), false
}

// indexFrom returns the index of the first c in s at or after from,
// given prev, the index of the last one found (or -1 when there was none,
// which stays so).
func indexFrom(s string, c byte, prev, from int) int {
	if prev < 0 || prev >= from {
		return prev
	}
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// writer builds a redacted copy of a string, from its first mask on.
type writer struct {
	b    []byte
	last int // the end of the part of s already in b
}

// mask replaces s[from:to] with Mask followed by suffix.
func (w *writer) mask(s string, from, to int, suffix string) {
	if w.b == nil {
		w.b = make([]byte, 0, len(s)+len(Mask)+1)
	}
	w.b = append(w.b, s[w.last:from]...)
	w.b = append(w.b, Mask...)
	w.b = append(w.b, suffix...)
	w.last = to
}

// keyByte reports whether c can be part of a parameter's name.
func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '[' || c == ']' || c == '%'
}

// valueEnd reports whether c ends an unquoted parameter value.
func valueEnd(c byte) bool {
	switch c {
	case '&', ';', '#', '"', '\'', '\\', '<', '>', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// param handles the '=' at s[eq]: when the name before it is secret, the
// value after it is masked. It returns where scanning goes on.
func (w *writer) param(s string, eq int) int {
	k := eq
	for k > 0 && keyByte(s[k-1]) {
		k--
	}
	key := s[k:eq]
	// A JSON string escapes '&' as \u0026 (Go's encoding/json does).
	if k > 0 && s[k-1] == '\\' && len(key) > 5 && strings.EqualFold(key[:5], "u0026") {
		key = key[5:]
	}
	if key == "" || !secretName(key, true) {
		return eq + 1
	}
	from := eq + 1
	if from < len(s) && (s[from] == '"' || s[from] == '\'') {
		// A quoted value: mask up to the closing quote.
		from++
		end := strings.IndexByte(s[from:], s[from-1])
		if end < 0 {
			end = len(s)
		} else {
			end += from
		}
		if end > from && s[from:end] != Mask {
			w.mask(s, from, end, "")
		}
		return end
	}
	// A path parameter (/x;jsessionid=…?q) ends where the query starts.
	matrix := k > 0 && s[k-1] == ';'
	end := from
	for end < len(s) && !valueEnd(s[end]) && !(matrix && s[end] == '?') {
		end++
	}
	if end > from && s[from:end] != Mask {
		w.mask(s, from, end, "")
	}
	return end
}

// indexEnc returns the index of the first "%3D" (an encoded '=') in s at
// or after from, or -1.
func indexEnc(s string, from int) int {
	for from < len(s) {
		i := strings.Index(s[from:], "%3")
		if i < 0 || from+i+2 >= len(s) {
			return -1
		}
		i += from
		if c := s[i+2]; c == 'D' || c == 'd' {
			return i
		}
		from = i + 2
	}
	return -1
}

// encDelim reports whether the two hex digits h, after a '%', encode a
// byte that ends a parameter: & ; #, or starts a query: ?.
func encDelim(h string) bool {
	switch h {
	case "26", "3B", "3b", "23", "3F", "3f":
		return true
	}
	return false
}

// encParam handles the "%3D" at s[p]: a parameter of a URL that is
// itself the value of a parameter (?next=%2Fcb%3Ftoken%3Dabc), masked as
// param masks a plain one. It returns where scanning goes on.
func (w *writer) encParam(s string, p int) int {
	k := p
	for k > 0 && keyByte(s[k-1]) {
		k--
	}
	key := s[k:p]
	// The name starts after the last encoded delimiter.
	for i := len(key) - 3; i >= 0; i-- {
		if key[i] == '%' && encDelim(key[i+1:i+3]) {
			key = key[i+3:]
			break
		}
	}
	if key == "" || !secretName(key, true) {
		return p + 3
	}
	from := p + 3
	end := from
	for end < len(s) && !valueEnd(s[end]) && !(s[end] == '%' && end+2 < len(s) && encDelim(s[end+1:end+3])) {
		end++
	}
	if end > from && s[from:end] != Mask {
		w.mask(s, from, end, "")
	}
	return end
}

// colon handles the ':' at s[c]: a URL's userinfo after "://", or the
// string value of a secret-named JSON key. It returns where scanning goes
// on.
func (w *writer) colon(s string, c int) int {
	if strings.HasPrefix(s[c+1:], "//") {
		return w.userinfo(s, c+3)
	}
	// The value: a JSON string.
	v := c + 1
	for v < len(s) && isSpace(s[v]) {
		v++
	}
	if v == len(s) || s[v] != '"' {
		return c + 1
	}
	// The key: a JSON string just before the colon.
	q := c - 1
	for q >= 0 && isSpace(s[q]) {
		q--
	}
	if q < 1 || s[q] != '"' {
		return c + 1
	}
	o := strings.LastIndexByte(s[max(0, q-maxKey):q], '"')
	if o < 0 {
		return c + 1
	}
	o += max(0, q-maxKey)
	if !secretName(s[o+1:q], false) {
		return c + 1
	}
	end := closingQuote(s, v+1)
	if end < 0 {
		// Cut short: mask the rest and close the string.
		if s[v+1:] != Mask {
			w.mask(s, v+1, len(s), `"`)
		}
		return len(s)
	}
	if s[v+1:end] != Mask {
		w.mask(s, v+1, end, "")
	}
	return end + 1
}

// maxKey bounds the length of a JSON key looked at.
const maxKey = 128

// closingQuote returns the index of the quote that ends the JSON string
// whose contents start at s[from], or -1.
func closingQuote(s string, from int) int {
	for i := from; i < len(s); i++ {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		// Escaped when preceded by an odd number of backslashes.
		n := 0
		for k := i - 1; k >= from && s[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// userinfo masks the userinfo of the URL whose authority starts at s[a]
// and returns where scanning goes on.
func (w *writer) userinfo(s string, a int) int {
	end := a
	at := -1
	for end < len(s) {
		c := s[end]
		if c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' || c == '\\' || c == '<' || c == '>' || isSpace(c) {
			break
		}
		if c == '@' {
			at = end
		}
		end++
	}
	if at > a && s[a:at] != Mask {
		w.mask(s, a, at, "")
	}
	if at >= 0 {
		return at + 1
	}
	return a
}

// secretWords are the words that make a name secret wherever they occur
// in it (after lower-casing and removing separators): "user_password",
// "X-Vault-Token", "client_secret", "code_verifier", "X-Amz-Signature".
// Names holding them are rarely anything else; "tokens_used" is one, and
// its values are numbers, which JSON redaction leaves alone.
var secretWords = []string{
	"pass", "pwd", "secret", "token", "apikey", "accesskey", "privatekey", "credential",
	"sessionid", "sessid", "authorization", "cookie", "signature", "verifier", "assertion",
	"authcode", "csrf", "xsrf",
}

// paramNames are secret as the whole name of a URL or form parameter,
// where OAuth, OpenID Connect, CAS and signed URLs put them. They are not
// secret as JSON keys: there "code" and "state" are far more often an error
// code or a resource's state than a credential.
var paramNames = map[string]bool{
	"code": true, "state": true, "oauthstate": true, "nonce": true, "sig": true, "key": true,
	"otp": true, "pin": true, "auth": true, "sid": true, "ticket": true, "samlresponse": true,
}

// wordsByFirst indexes secretWords by their first byte.
var wordsByFirst [256][]string

// starts has bit b-'a' of starts[a] set when a secret word starts with
// the letters a and b: a name without such a pair holds none (most JSON
// keys), which maybeSecret finds without copying the name.
var starts [128]uint32

func init() {
	for _, w := range secretWords {
		wordsByFirst[w[0]] = append(wordsByFirst[w[0]], w)
		starts[w[0]] |= 1 << (w[1] - 'a')
	}
}

// maybeSecret reports whether name, lower-cased and without separators,
// holds two letters a secret word starts with.
func maybeSecret(name string) bool {
	var prev byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9':
			prev = 0
			continue
		default:
			continue
		}
		if prev != 0 && starts[prev]&(1<<(c-'a')) != 0 {
			return true
		}
		prev = c
	}
	return false
}

// maxName bounds the normalized length of a name looked at: a secret word
// beyond it is not found.
const maxName = 128

// secretName reports whether name is the name of a secret; param adds the
// names secret only as URL or form parameters (paramNames).
func secretName(name string, param bool) bool {
	if !param && !maybeSecret(name) {
		return false
	}
	var buf [maxName]byte
	n := 0
	for i := 0; i < len(name) && n < len(buf); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			continue
		}
		buf[n] = c
		n++
	}
	k := buf[:n]
	if param && paramNames[string(k)] {
		return true
	}
	for i := range k {
		for _, w := range wordsByFirst[k[i]] {
			if len(k)-i >= len(w) && string(k[i:i+len(w)]) == w {
				return true
			}
		}
	}
	return false
}
