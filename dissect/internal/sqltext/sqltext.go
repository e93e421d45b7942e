// Package sqltext normalizes SQL statements for grouping: the path of a
// database protocol's calls, so that one statement run with different
// values is one endpoint.
package sqltext

import "bytes"

// MaxLen caps a normalized statement; a longer one ends in "…".
const MaxLen = 2048

const maxPath = MaxLen

// Dialect says how a server reads literals and comments.
type Dialect struct {
	// Backslash: a backslash escapes the next byte in every string
	// (MySQL); otherwise only in E'…' strings (PostgreSQL).
	Backslash bool
	// DoubleQuoted: "…" is a string (MySQL); otherwise an identifier,
	// kept.
	DoubleQuoted bool
	// Hash: # starts a comment to the end of the line (MySQL).
	Hash bool
	// Dollar: $tag$…$tag$ is a string (PostgreSQL).
	Dollar bool
	// Question: ? is a prepared statement's parameter (MySQL), listed
	// like a literal; otherwise an operator (PostgreSQL's jsonb ?).
	Question bool
}

// PostgreSQL and MySQL are the dialects of those servers.
var (
	PostgreSQL = Dialect{Dollar: true}
	MySQL      = Dialect{Backslash: true, DoubleQuoted: true, Hash: true, Question: true}
)

// Normalize returns sql for grouping: string, dollar-quoted and numeric
// literals replaced by ?, comments dropped, runs of white space made one
// space, and lists of placeholders ("IN (?, ?, ?)") made one ("IN (?)").
// Parameters ($1, ?) and quoted identifiers stay. The result is cut at
// MaxLen bytes.
func Normalize(sql []byte, d Dialect) string {
	out := make([]byte, 0, min(len(sql), maxPath))
	space := false
	emit := func(b ...byte) {
		if space && len(out) > 0 {
			out = append(out, ' ')
		}
		space = false
		out = append(out, b...)
	}
	placeholder := func() {
		// "?, ?" and "?,?" become "?".
		if space {
			space = false
			if n := len(out); n >= 3 && out[n-1] == ',' && out[n-2] == '?' {
				out = out[:n-1]
				return
			}
			if len(out) > 0 {
				out = append(out, ' ')
			}
		} else if n := len(out); n >= 2 && out[n-1] == ',' && out[n-2] == '?' {
			out = out[:n-1]
			return
		}
		out = append(out, '?')
	}
	i := 0
	for i < len(sql) && len(out) < maxPath {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			space = true
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			space = true
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth := 0
			for i+1 < len(sql) {
				if sql[i] == '/' && sql[i+1] == '*' {
					depth++
					i += 2
					continue
				}
				if sql[i] == '*' && sql[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
					continue
				}
				i++
			}
			if depth > 0 {
				i = len(sql)
			}
			space = true
		case c == '?' && d.Question:
			placeholder()
			i++
		case c == '#' && d.Hash:
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			space = true
		case c == '"' && d.DoubleQuoted:
			i = skipQuoted(sql, i, '"', true)
			placeholder()
		case c == '`':
			j := skipQuoted(sql, i, '`', false)
			emit(sql[i:j]...)
			i = j
		case c == '\'':
			i = skipQuoted(sql, i, '\'', d.Backslash || escapes(sql, i))
			if len(out) > 0 && (out[len(out)-1] == 'E' || out[len(out)-1] == 'e') && (len(out) == 1 || !identByte(out[len(out)-2])) {
				out = out[:len(out)-1] // E'…': the E is part of the literal
			}
			placeholder()
		case c == '"':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			emit(sql[i:min(j+1, len(sql))]...)
			i = j + 1
		case c == '$' && d.Dollar:
			if j := dollarTag(sql, i); j > i {
				tag := sql[i:j]
				end := indexFrom(sql, tag, j)
				if end < 0 {
					i = len(sql)
				} else {
					i = end + len(tag)
				}
				placeholder()
				continue
			}
			// A parameter ($1) or a bare $.
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			emit(sql[i:j]...)
			i = j
		case c >= '0' && c <= '9' && (len(out) == 0 || space || !identByte(out[len(out)-1])) ||
			c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9' && (len(out) == 0 || space || !identByte(out[len(out)-1])):
			j := i
			if c == '0' && j+1 < len(sql) && (sql[j+1]|0x20 == 'x' || sql[j+1]|0x20 == 'b' || sql[j+1]|0x20 == 'o') {
				j += 2
			}
			for j < len(sql) {
				d := sql[j]
				if d >= '0' && d <= '9' || d == '.' || d == '_' || d|0x20 >= 'a' && d|0x20 <= 'f' {
					j++
					continue
				}
				if (d == '+' || d == '-') && j > i && sql[j-1]|0x20 == 'e' {
					j++
					continue
				}
				break
			}
			i = j
			placeholder()
		default:
			emit(c)
			i++
		}
	}
	if len(out) >= maxPath {
		out = append(out[:maxPath], "…"...)
	}
	return string(out)
}

func identByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// escapes reports whether the string literal at i is an escape string
// (E'…'), where a backslash escapes the next byte.
func escapes(sql []byte, i int) bool {
	return i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i == 1 || !identByte(sql[i-2]))
}

// skipQuoted returns the index after the quoted text starting at i (a
// doubled quote is one quote inside).
func skipQuoted(sql []byte, i int, q byte, backslash bool) int {
	j := i + 1
	for j < len(sql) {
		switch sql[j] {
		case '\\':
			if backslash {
				j += 2
				continue
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j += 2
				continue
			}
			return j + 1
		}
		j++
	}
	return len(sql)
}

// dollarTag returns the end of a dollar-quote opening tag at i ($$ or
// $tag$), or i when there is none.
func dollarTag(sql []byte, i int) int {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		return i // a parameter
	}
	for j < len(sql) && (identByte(sql[j]) && sql[j] < 0x80) {
		j++
	}
	if j < len(sql) && sql[j] == '$' {
		return j + 1
	}
	return i
}

func indexFrom(s, sub []byte, from int) int {
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i] == sub[0] && string(s[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}

// secretWords are the keywords a password literal follows: PASSWORD
// ('…', = '…', ('…')) in CREATE/ALTER USER or ROLE and SET PASSWORD, and
// MySQL's IDENTIFIED [WITH plugin] BY|AS '…'.
var secretWords = [][]byte{[]byte("PASSWORD"), []byte("IDENTIFIED")}

// Mask is what a password literal becomes.
const Mask = "[redacted]"

// RedactSecrets returns sql with the string literals that follow
// PASSWORD or IDENTIFIED BY masked ("ALTER USER app PASSWORD '[redacted]'");
// sql itself when it has none (no copy).
func RedactSecrets(sql []byte, d Dialect) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		// Skip literals and quoted names: a keyword inside them is text.
		switch {
		case c == '\'':
			i = skipQuoted(sql, i, '\'', d.Backslash || escapes(sql, i)) - 1
			continue
		case c == '"' || c == '`':
			i = skipQuoted(sql, i, c, d.Backslash && c == '"') - 1
			continue
		}
		if c|0x20 != 'p' && c|0x20 != 'i' || i > 0 && identByte(sql[i-1]) {
			continue
		}
		for _, w := range secretWords {
			if len(sql)-i < len(w) || !bytes.EqualFold(sql[i:i+len(w)], w) || i+len(w) < len(sql) && identByte(sql[i+len(w)]) {
				continue
			}
			j := i + len(w)
			if w[0] == 'I' {
				// IDENTIFIED [WITH plugin] BY|AS
				j = skipSpace(sql, j)
				if word(sql, j, "WITH") {
					j = skipSpace(sql, j+4)
					if j < len(sql) && (sql[j] == '\'' || sql[j] == '"' || sql[j] == '`') {
						j = skipQuoted(sql, j, sql[j], false)
					} else {
						for j < len(sql) && identByte(sql[j]) {
							j++
						}
					}
					j = skipSpace(sql, j)
				}
				if !word(sql, j, "BY") && !word(sql, j, "AS") {
					break
				}
				j += 2
			}
			for j < len(sql) && (sql[j] == ' ' || sql[j] == '\t' || sql[j] == '\n' || sql[j] == '\r' || sql[j] == '=' || sql[j] == '(') {
				j++
			}
			if j < len(sql) && (sql[j] == '\'' || sql[j] == '"' && d.DoubleQuoted) {
				end := skipQuoted(sql, j, sql[j], d.Backslash || escapes(sql, j))
				if out == nil {
					out = make([]byte, 0, len(sql))
				}
				out = append(out, sql[last:j+1]...)
				out = append(out, Mask...)
				out = append(out, sql[j])
				last = end
				i = end - 1
			}
			break
		}
	}
	if out == nil {
		return sql
	}
	return append(out, sql[last:]...)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// word reports whether the keyword w (upper case) stands at i.
func word(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && bytes.EqualFold(b[i:i+len(w)], []byte(w)) && (i+len(w) == len(b) || !identByte(b[i+len(w)]))
}

// Cache remembers the normalized form of the statements a connection
// sends again and again (a prepared statement's executions, a pool's
// queries), so that each is normalized once. It holds at most
// cacheSize statements, forgetting them all when full. The zero value is
// ready; a connection's parser owns one.
type Cache struct {
	m map[string]string
}

const cacheSize = 256

// Normalize returns Normalize(sql, d), from the cache when it can.
func (c *Cache) Normalize(sql []byte, d Dialect) string {
	if s, ok := c.m[string(sql)]; ok {
		return s
	}
	s := Normalize(sql, d)
	if len(sql) > 4096 {
		return s // a big statement is seldom sent twice
	}
	if c.m == nil || len(c.m) >= cacheSize {
		c.m = make(map[string]string, 16)
	}
	c.m[string(sql)] = s
	return s
}

// Size is about the memory the cache holds.
func (c *Cache) Size() int {
	n := 0
	for k, v := range c.m {
		n += len(k) + len(v) + 32
	}
	return n
}
