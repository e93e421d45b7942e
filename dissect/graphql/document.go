package graphql

import "strings"

// operation is what a GraphQL document says of the operation a request
// runs: its type, its name and the fields it selects at the root.
type operation struct {
	typ    string   // "query", "mutation", "subscription"
	name   string   // "" when anonymous
	fields []string // root fields by name (not alias), at most maxFields
	more   int      // root fields beyond maxFields
	cut    bool     // the document ended inside the operation
}

// maxFields bounds the root fields a call lists.
const maxFields = 16

// maxNesting bounds how deep inline fragments at the root are followed.
const maxNesting = 8

// token kinds.
const (
	tokEOF = iota
	tokName
	tokPunct  // ! $ & ( ) ... : = @ [ ] { | }
	tokValue  // a number or a string
	tokBad    // a character GraphQL does not have
	tokSpread // ...
)

// lexer reads GraphQL's tokens (the October 2021 specification's lexical
// grammar), skipping what it calls ignored: white space, line ends, commas,
// the byte order mark and comments.
type lexer struct {
	s string
	i int
}

func (l *lexer) next() (kind int, text string) {
	s := l.s
	for l.i < len(s) {
		switch c := s[l.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			l.i++
		case c == '#':
			for l.i < len(s) && s[l.i] != '\n' && s[l.i] != '\r' {
				l.i++
			}
		case strings.HasPrefix(s[l.i:], "\uFEFF"):
			l.i += len("\uFEFF")
		default:
			return l.token()
		}
	}
	return tokEOF, ""
}

func (l *lexer) token() (int, string) {
	s, start := l.s, l.i
	c := s[start]
	switch {
	case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		l.i++
		for l.i < len(s) && (s[l.i] == '_' || s[l.i] >= 'A' && s[l.i] <= 'Z' || s[l.i] >= 'a' && s[l.i] <= 'z' || s[l.i] >= '0' && s[l.i] <= '9') {
			l.i++
		}
		return tokName, s[start:l.i]
	case c == '-' || c >= '0' && c <= '9':
		l.i++
		for l.i < len(s) && (s[l.i] >= '0' && s[l.i] <= '9' || s[l.i] == '.' || s[l.i] == 'e' || s[l.i] == 'E' || s[l.i] == '+' || s[l.i] == '-') {
			l.i++
		}
		return tokValue, s[start:l.i]
	case strings.HasPrefix(s[start:], `"""`):
		end := start + 3
		for {
			j := strings.Index(s[end:], `"""`)
			if j < 0 {
				l.i = len(s)
				return tokValue, s[start:]
			}
			end += j
			if s[end-1] != '\\' {
				l.i = end + 3
				return tokValue, s[start:l.i]
			}
			end += 3 // an escaped \"""
		}
	case c == '"':
		l.i++
		for l.i < len(s) {
			switch s[l.i] {
			case '\\':
				l.i += 2
				continue
			case '"':
				l.i++
				return tokValue, s[start:l.i]
			case '\n', '\r':
				// A string does not span lines: a malformed document.
				return tokBad, s[start:l.i]
			}
			l.i++
		}
		l.i = len(s)
		return tokValue, s[start:]
	case strings.HasPrefix(s[start:], "..."):
		l.i += 3
		return tokSpread, "..."
	case strings.IndexByte("!$&():=@[]{|}", c) >= 0:
		l.i++
		return tokPunct, s[start:l.i]
	}
	l.i++
	return tokBad, s[start:l.i]
}

// parseDocument reads an executable GraphQL document and returns the
// operation a request with operationName want runs: the one so named, or
// the first when want is empty. ops counts the operations the document
// defines. ok is false when the text is not a GraphQL document (no
// operation before something GraphQL does not have): a request whose
// "query" holds SQL or a search expression is not GraphQL. A document cut
// short still gives what its start says, marked cut.
func parseDocument(doc, want string) (operation, int, bool) {
	l := &lexer{s: doc}
	var op, first operation
	ops, found := 0, false
	result := func() (operation, int, bool) {
		switch {
		case found:
			return op, ops, true
		case ops > 0:
			// No operation has the name asked: the server will say so;
			// the call is still the document's first.
			return first, ops, true
		}
		return operation{}, 0, false
	}
	for {
		kind, text := l.next()
		var cur operation
		switch {
		case kind == tokPunct && text == "{":
			cur.typ = "query" // the query shorthand
			l.rootFields(&cur, 1)
		case kind == tokName && (text == "query" || text == "mutation" || text == "subscription"):
			cur.typ = text
			if !l.operationHead(&cur) {
				return result()
			}
			if !cur.cut {
				l.rootFields(&cur, 1)
			}
		case kind == tokName && text == "fragment":
			if !l.skipToBrace() {
				return result()
			}
			l.skipBlock()
			continue
		default:
			// The end, a type system definition, or not GraphQL at all.
			return result()
		}
		if len(cur.fields) == 0 && cur.more == 0 && !cur.cut {
			// An operation selects at least one field: braces around
			// something else are not GraphQL.
			return result()
		}
		if ops == 0 {
			first = cur
		}
		ops++
		if !found && (want == "" || cur.name == want) {
			op, found = cur, true
		}
		if cur.cut {
			return result()
		}
	}
}

// operationHead reads an operation's name, variable definitions and
// directives, up to the '{' of its selection set.
func (l *lexer) operationHead(op *operation) bool {
	save := l.i
	kind, text := l.next()
	switch {
	case kind == tokName:
		op.name = text
	case kind == tokPunct && (text == "(" || text == "@" || text == "{"):
		l.i = save
	case kind == tokEOF:
		op.cut = true
		return true
	default:
		return false
	}
	if !l.skipToBrace() {
		op.cut = true
	}
	return true
}

// skipToBrace moves past the next '{' outside parentheses (variable
// defaults and directive arguments may hold object values); false when
// the document ends first, or holds what GraphQL does not.
func (l *lexer) skipToBrace() bool {
	parens := 0
	for {
		kind, text := l.next()
		switch {
		case kind == tokEOF || kind == tokBad:
			return false
		case kind != tokPunct:
		case text == "(":
			parens++
		case text == ")":
			parens--
		case text == "{" && parens <= 0:
			return true
		}
	}
}

// skipBlock moves past the '}' that closes a block whose '{' was read.
func (l *lexer) skipBlock() { l.skip("{", "}") }

// skipParens moves past the ')' closing arguments whose '(' was read.
func (l *lexer) skipParens() { l.skip("(", ")") }

// skip moves past the close that balances an open already read.
func (l *lexer) skip(open, close string) {
	depth := 1
	for depth > 0 {
		kind, text := l.next()
		switch {
		case kind == tokEOF:
			return
		case kind == tokPunct && text == open:
			depth++
		case kind == tokPunct && text == close:
			depth--
		}
	}
}

// rootFields reads a selection set whose '{' was read, listing its fields
// in op; inline fragments at the root add theirs, fragment spreads are
// listed as "...Name".
func (l *lexer) rootFields(op *operation, nesting int) {
	add := func(f string) {
		if len(op.fields) < maxFields {
			op.fields = append(op.fields, f)
		} else {
			op.more++
		}
	}
	for {
		kind, text := l.next()
		switch {
		case kind == tokEOF:
			op.cut = true
			return
		case kind == tokPunct && text == "}":
			return
		case kind == tokName:
			field := text
			save := l.i
			if k, t := l.next(); k == tokPunct && t == ":" {
				if k, t = l.next(); k == tokName {
					field = t
				}
			} else {
				l.i = save
			}
			add(field)
		case kind == tokSpread:
			save := l.i
			k, t := l.next()
			switch {
			case k == tokName && t != "on":
				add("..." + t)
			case k == tokName || k == tokPunct && (t == "@" || t == "{"):
				// An inline fragment: its fields are the root's.
				if t != "{" {
					l.i = save
					if !l.skipToBrace() {
						op.cut = true
						return
					}
				}
				if nesting < maxNesting {
					l.rootFields(op, nesting+1)
				} else {
					l.skipBlock()
				}
				if op.cut {
					return
				}
			}
		case kind == tokPunct && text == "(":
			l.skipParens()
		case kind == tokPunct && text == "@":
			l.next() // a directive's name; its arguments are skipped next
		case kind == tokPunct && text == "{":
			l.skipBlock() // a field's own selection set
		}
	}
}
