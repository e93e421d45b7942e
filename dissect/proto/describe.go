package proto

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Description is what a protocol tells the rest of wirescope about its
// calls, so that the index, summaries and tools read every protocol alike
// without knowing it by name.
type Description struct {
	// Summary says what its calls are, for tool schemas and answers:
	// "HTTP/1.x requests", "DNS queries".
	Summary string
	// Path says what Call.Path holds, for search and grouping.
	Path PathKind
	// Outcome classifies a call that has a status (calls without a
	// response, or without a status, are classified before it is asked).
	// Nil: numeric statuses by HTTP's classes (4xx a client error, 5xx and
	// up a server error), anything else OK.
	Outcome func(c *Call) Outcome
	// Resolution marks a name-resolution protocol (DNS): compare_windows
	// reports its new failures as failed lookups rather than endpoint
	// errors.
	Resolution bool
	// Upgrades are the protocol switches it takes over: HTTP Upgrade
	// tokens ("websocket", "h2c") after which its parser reads the
	// connection (see Emitter.Upgrade).
	Upgrades []string
	// Encrypted marks a protocol whose payload is encrypted (TLS): its
	// flows count as encrypted even before a dissection says whether they
	// were decrypted.
	Encrypted bool
	// TextStatus keeps Call.Status a JSON string even when it is all
	// digits: a SQLSTATE ("22012") is a code, not a number. Otherwise an
	// all-digit status (an HTTP status) is written as a number.
	TextStatus bool
	// ALPN are the TLS application protocol IDs (RFC 7301) that name it:
	// "h2", "http/1.1". A decrypted session whose handshake selected one
	// is read by it without detection (Tunneler).
	ALPN []string
}

// PathKind says how a protocol's Call.Path is searched and grouped.
type PathKind uint8

// Path kinds.
const (
	// PathText: words (a DNS name, a topic, a statement); the path is
	// grouped as it is.
	PathText PathKind = iota
	// PathURL: a request target ("/api/orders/42?x=1"): grouped without
	// its query, with ID-like segments as "{id}", and an ID-like segment
	// is one search term.
	PathURL
)

// Describer is a Protocol that describes its calls. A protocol that does
// not gets the zero Description.
type Describer interface {
	Describe() Description
}

// registered is the registry: a snapshot replaced whole on Register, read
// without locks (Outcome asks it for every call).
var (
	registered   atomic.Pointer[descriptions]
	registerLock sync.Mutex
)

type descriptions struct {
	names   []string
	desc    map[string]Description
	carried []Carried
}

// Register makes protocols' descriptions known to Described and
// Registered; dissect's registry does it for every protocol it dissects.
// Registering a name again replaces its description.
func Register(ps ...Protocol) {
	registerLock.Lock()
	defer registerLock.Unlock()
	next := &descriptions{desc: map[string]Description{}}
	if cur := registered.Load(); cur != nil {
		next.names = slices.Clone(cur.names)
		next.carried = slices.Clone(cur.carried)
		for k, v := range cur.desc {
			next.desc[k] = v
		}
	}
	for _, p := range ps {
		var d Description
		if ds, ok := p.(Describer); ok {
			d = ds.Describe()
		}
		if _, ok := next.desc[p.Name()]; !ok {
			next.names = append(next.names, p.Name())
		}
		next.desc[p.Name()] = d
		next.carried = slices.DeleteFunc(next.carried, func(c Carried) bool { return c.Name() == p.Name() })
		if c, ok := p.(Carried); ok {
			next.carried = append(next.carried, c)
		}
	}
	registered.Store(next)
}

// Described returns the description of protocol name; the zero
// Description when it is not registered.
func Described(name string) Description {
	if r := registered.Load(); r != nil {
		return r.desc[name]
	}
	return Description{}
}

// Registered returns the names of the registered protocols, in the order
// they were registered.
func Registered() []string {
	if r := registered.Load(); r != nil {
		return slices.Clone(r.names)
	}
	return nil
}
