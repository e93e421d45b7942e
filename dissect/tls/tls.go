// Package tls dissects TLS (RFC 5246, RFC 8446): one call per handshake,
// and, with a key log, the calls inside.
//
// A handshake's call has Method "handshake", Path the SNI (empty when the
// client sent none), and Status the negotiated version ("TLS1.2",
// "TLS1.3") or the name of the alert that ended the handshake
// ("handshake_failure", "unknown_ca", "protocol_version" …), or
// "certificate_expired" when the server's certificate had expired at
// capture time and the client went on regardless. Its latency
// runs from the ClientHello to the ServerHello. Extra holds what an SRE
// asks of a handshake: ALPN offered and selected, the cipher suite, JA3,
// JA3S, JA4 and JA4S, resumption, ECH, a HelloRetryRequest, and the
// server certificate's subject, SANs, issuer and validity (flagged when
// expired at capture time) where the certificate travels in the clear
// (TLS 1.2, or TLS 1.3 decrypted).
//
// With a key log (Protocol.Keys: what SSLKEYLOGFILE writes) records are
// decrypted with Go's primitives and the plaintext is dissected as the
// connection's own: the protocol ALPN names, else the one detected from
// its bytes (proto.Tunneler). The suites decrypted are listed in suites;
// others say why not on the handshake and the flow.
//
// Memory is bounded whatever the records claim: a record longer than TLS
// allows ends the parsing of its direction, a partial record is held up
// to that bound, and a handshake message is held up to maxHandshake
// (longer ones are skipped and counted). After a capture gap records are
// found again by their headers, and the record sequence number by trial.
package tls

import (
	"crypto/x509"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is TLS. Keys, when set, decrypt the sessions they hold.
type Protocol struct {
	Keys *KeyLog
}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "tls" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{
		Summary:   "TLS handshakes (with a key log, the calls inside are their own protocols')",
		Path:      proto.PathText,
		Outcome:   outcome,
		Encrypted: true,
	}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{443, 8443, 6443, 9443} }

// outcome: a negotiated version is a success; an expired certificate
// (status certificate_expired, the client going on) a server error; an alert the server sent refused the client's
// hello (a client error), one the client sent refused the server's
// certificate or parameters (a server error).
func outcome(c *proto.Call) proto.Outcome {
	if strings.HasPrefix(c.Status, "TLS") || strings.HasPrefix(c.Status, "SSL") {
		return proto.OK
	}
	if c.Extra.Get("alert_from") == "server" {
		return proto.ClientError
	}
	return proto.ServerError
}

// Record layer.
const (
	typeChangeCipherSpec = 20
	typeAlert            = 21
	typeHandshake        = 22
	typeApplicationData  = 23
	typeHeartbeat        = 24
	// maxRecord is the longest record fragment TLS allows (2^14 plus
	// 2048 bytes of expansion).
	maxRecord = 1<<14 + 2048
	// maxHandshake bounds a handshake message held for parsing
	// (certificate chains run to tens of KiB).
	maxHandshake = 256 << 10
	// maxSeqSkip is how many records a gap may have swallowed before the
	// sequence number is not searched for.
	maxSeqSkip = 256
)

// header checks a record header: its type, version and length.
func header(b []byte) (typ byte, n int, ok bool) {
	typ, n = b[0], int(binary.BigEndian.Uint16(b[3:5]))
	ok = typ >= typeChangeCipherSpec && typ <= typeHeartbeat && b[1] == 3 && b[2] <= 4 && n <= maxRecord
	return typ, n, ok
}

// DetectStream implements proto.StreamProtocol: a handshake record
// carrying a ClientHello or ServerHello, an SSLv2-style ClientHello, or —
// for a connection whose handshake was not captured — an application data
// record of TLS 1.2 or 1.3.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) < 6 {
		if len(data) == 0 || data[0] == typeHandshake || data[0] == typeApplicationData || data[0]&0x80 != 0 {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.No, proto.RoleUnknown
	}
	if data[0]&0x80 != 0 {
		// SSLv2 form: 2-byte length, type 1, version 0x0002 or 0x03xx.
		n := int(data[0]&0x7f)<<8 | int(data[1])
		if data[2] == 1 && n >= 9 && ((data[3] == 0 && data[4] == 2) || (data[3] == 3 && data[4] <= 4)) {
			return proto.Yes, proto.Client
		}
		return proto.No, proto.RoleUnknown
	}
	typ, n, ok := header(data)
	if !ok || n == 0 {
		return proto.No, proto.RoleUnknown
	}
	switch {
	case typ == typeHandshake && data[5] == 1:
		return proto.Yes, proto.Client
	case typ == typeHandshake && data[5] == 2:
		return proto.Yes, proto.Server
	case typ == typeApplicationData && data[1] == 3 && data[2] == 3:
		if len(data) >= 5+n+5 {
			if _, _, ok := header(data[5+n:]); !ok {
				return proto.No, proto.RoleUnknown
			}
		}
		return proto.Yes, proto.RoleUnknown
	}
	return proto.No, proto.RoleUnknown
}

// NewStream implements proto.StreamProtocol.
func (p Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	ps := &parser{keys: p.Keys, out: out, lim: lim}
	ps.noter, _ = out.(proto.FlowNoter)
	return ps
}

// direction is one side's record stream.
type direction struct {
	buf []byte    // a record not yet whole
	at  time.Time // when buf's first byte was captured
	hs  []byte    // a handshake message not yet whole
	// skip counts the bytes of an oversized handshake message still to
	// come; drop those of a record a gap cut.
	skip, drop int
	// key protects this side's records once known; next is the key its
	// ChangeCipherSpec switches to (TLS 1.2).
	key, next *keyCipher
	ccs       bool // sent ChangeCipherSpec: later records are protected
	protected int  // protected records seen
	resync    bool // after a gap: find a record header
	seqLost   bool // after a gap: find the sequence number by trial
	lost      bool // records are no longer found: the rest is skipped
	finished  bool // TLS 1.3: sent its Finished
	seen      bool // sent bytes
}

type parser struct {
	keys  *KeyLog
	out   proto.Emitter
	noter proto.FlowNoter
	lim   *proto.Limits
	d     [2]direction // client, server

	ch          *clientHello
	sh          *serverHello
	retry       bool // a HelloRetryRequest was seen
	chAt, chEnd time.Time
	shAt        time.Time
	chSize      int
	shSize      int
	alpn        string // selected
	cert        *x509.Certificate
	certErr     string
	skipped     int // handshake message bytes skipped for maxHandshake

	done bool // the handshake's call was emitted
	// awaitServer is set from the client\'s TLS 1.3 Finished to the
	// server\'s next record, which accepts it or refuses it.
	awaitServer bool
	ended       bool
	sec         *secrets
	decrypt     string // why not decrypted, or "decrypted"
	noted       string // decryption state noted on the flow
	badMACs     int
	// closedBy is the alert that ended the session, noted on the flow.
	closedBy    string
	closedFatal bool
	malformed   string
	tunnel      proto.StreamParser
	plain       []byte
}

func side(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

func roleOf(i int) proto.Role {
	if i == 1 {
		return proto.Server
	}
	return proto.Client
}

// Buffered implements proto.Buffering: partial records and handshake
// messages, and what the plaintext's parser keeps.
func (p *parser) Buffered() int {
	n := cap(p.d[0].buf) + cap(p.d[1].buf) + cap(p.d[0].hs) + cap(p.d[1].hs) + cap(p.plain)
	if b, ok := p.tunnel.(proto.Buffering); ok {
		n += b.Buffered()
	}
	return n
}

// Feed implements proto.StreamParser.
func (p *parser) Feed(r proto.Role, data []byte, t time.Time) {
	i := side(r)
	d := &p.d[i]
	if p.ended || d.lost || len(data) == 0 {
		return
	}
	if !d.seen {
		d.seen = true
		if i == 0 && data[0]&0x80 != 0 && p.ch == nil {
			p.sslv2(data, t)
			return
		}
	}
	for len(data) > 0 && !d.lost && !p.ended {
		if d.drop > 0 {
			k := min(d.drop, len(data))
			d.drop -= k
			data = data[k:]
			continue
		}
		if d.resync {
			j := findRecord(data)
			if j < 0 {
				return
			}
			data = data[j:]
			d.resync = false
		}
		if len(d.buf) == 0 && len(data) >= 5 {
			typ, n, ok := header(data)
			if !ok {
				p.lose(i, "not a TLS record")
				return
			}
			if len(data) >= 5+n {
				p.record(i, typ, data[:5], data[5:5+n], t)
				data = data[5+n:]
				continue
			}
		}
		// Hold a record not yet whole.
		if len(d.buf) == 0 {
			d.at = t
		}
		if len(d.buf) < 5 {
			k := min(5-len(d.buf), len(data))
			d.buf = append(d.buf, data[:k]...)
			data = data[k:]
			if len(d.buf) < 5 {
				return
			}
		}
		typ, n, ok := header(d.buf)
		if !ok {
			p.lose(i, "not a TLS record")
			return
		}
		k := min(5+n-len(d.buf), len(data))
		d.buf = append(d.buf, data[:k]...)
		data = data[k:]
		if len(d.buf) == 5+n {
			p.record(i, typ, d.buf[:5], d.buf[5:], d.at)
			d.buf = d.buf[:0]
		}
	}
}

// findRecord returns where a record header that looks right starts in b
// (the next one too when b holds it), or -1.
func findRecord(b []byte) int {
	for j := 0; j+5 <= len(b); j++ {
		typ, n, ok := header(b[j:])
		if !ok || n == 0 || typ == typeHeartbeat || b[j+1] != 3 || b[j+2] != 3 {
			continue
		}
		if next := j + 5 + n; next+5 <= len(b) {
			if _, _, ok := header(b[next:]); !ok {
				continue
			}
		}
		return j
	}
	return -1
}

// lose stops parsing side i: its bytes are not TLS records any more.
func (p *parser) lose(i int, why string) {
	d := &p.d[i]
	d.lost = true
	d.buf, d.hs = nil, nil
	if p.malformed == "" {
		p.malformed = roleOf(i).String() + " records: " + why
	}
	if p.tunnel != nil {
		p.tunnel.Gap(roleOf(i), -1)
	}
}

// Gap implements proto.StreamParser.
func (p *parser) Gap(r proto.Role, n int) {
	i := side(r)
	d := &p.d[i]
	if p.ended || d.lost {
		return
	}
	if p.tunnel != nil {
		p.tunnel.Gap(r, -1)
	}
	d.hs = d.hs[:0]
	d.skip = 0
	if len(d.buf) >= 5 && n >= 0 {
		// The gap falls inside the record held: that record is lost,
		// the next one starts where it ends.
		_, rn, _ := header(d.buf)
		if rest := 5 + rn - len(d.buf); n < rest {
			d.drop = rest - n
			d.buf = d.buf[:0]
			if d.key != nil {
				d.key.seq++
			}
			return
		}
	}
	d.buf = d.buf[:0]
	d.drop = 0
	d.resync = true
	d.seqLost = true
}

// sslv2 reads an SSLv2-style ClientHello (a client that still offers
// SSLv2 compatibility); the server's answer comes as TLS records.
func (p *parser) sslv2(data []byte, t time.Time) {
	d := &p.d[0]
	if len(data) < 3 {
		p.lose(0, "SSLv2 hello cut")
		return
	}
	n := int(data[0]&0x7f)<<8 | int(data[1])
	if len(data) < 2+n {
		p.lose(0, "SSLv2 hello split across segments")
		return
	}
	h, err := parseSSLv2Hello(data[2 : 2+n])
	if err != nil {
		p.lose(0, err.Error())
		return
	}
	p.ch, p.chAt, p.chEnd, p.chSize = h, t, t, n
	if rest := data[2+n:]; len(rest) > 0 {
		d.seen = true
		p.Feed(proto.Client, rest, t)
	}
}

// record handles one whole record side i sent.
func (p *parser) record(i int, typ byte, hdr, body []byte, t time.Time) {
	d := &p.d[i]
	tls13 := p.sh != nil && p.sh.version == 0x0304
	if d.ccs || (tls13 && typ == typeApplicationData) || (p.sh == nil && typ == typeApplicationData) {
		d.protected++
		if d.protected == 1 {
			p.firstProtected(i, t)
		}
		if d.key == nil {
			return
		}
		pt, inner, err := p.open(d, typ, hdr, body)
		if err != nil {
			p.badRecord(i, err)
			return
		}
		typ, body = inner, pt
		p.setDecrypted("decrypted")
		if i == 1 && p.awaitServer && typ != typeAlert {
			p.handshakeDone(t)
		}
	}
	switch typ {
	case typeChangeCipherSpec:
		// A ChangeCipherSpec before the ServerHello, or in TLS 1.3, is
		// there for middleboxes (RFC 8446 §D.4) and changes nothing.
		if p.sh != nil && !tls13 && !d.ccs {
			d.ccs = true
			d.key, d.next = d.next, nil
			if p.d[0].ccs && p.d[1].ccs {
				p.handshakeDone(t)
			}
		}
	case typeAlert:
		if len(body) >= 2 {
			p.alert(i, body[0], body[1], t)
		}
	case typeHandshake:
		p.handshakeBytes(i, body, t)
	case typeApplicationData:
		p.appData(i, body, t)
	}
}

// open decrypts a record, searching the sequence number after a gap.
func (p *parser) open(d *direction, typ byte, hdr, body []byte) ([]byte, byte, error) {
	k := d.key
	tries := 1
	if d.seqLost {
		tries = maxSeqSkip
	}
	var err error
	for try := 0; try < tries; try++ {
		var pt []byte
		var inner byte
		pt, inner, err = k.open(p.plain[:0], typ, hdr, body, k.seq+uint64(try))
		if err == nil {
			k.seq += uint64(try) + 1
			d.seqLost = false
			if cap(pt) > cap(p.plain) {
				p.plain = pt[:0]
			}
			return pt, inner, nil
		}
		if err != errBadMAC {
			break
		}
	}
	if !d.seqLost {
		k.seq++
	}
	return nil, 0, err
}

// badRecord counts a record that did not decrypt: its plaintext is lost to
// the parser inside, which resynchronises after it.
func (p *parser) badRecord(i int, err error) {
	p.badMACs++
	if p.malformed == "" {
		p.malformed = roleOf(i).String() + " record: " + err.Error()
	}
	if p.tunnel != nil {
		p.tunnel.Gap(roleOf(i), -1)
	}
}

// firstProtected is the first encrypted record side i sent: in TLS 1.3
// without keys, the client's ends the handshake as far as can be seen.
func (p *parser) firstProtected(i int, t time.Time) {
	if p.sh == nil {
		// Encrypted records without a handshake: the capture began after it.
		if p.ch == nil {
			p.setDecrypted("no handshake seen")
		}
		return
	}
	if i == 0 && p.sh.version == 0x0304 && p.d[0].key == nil {
		p.handshakeDone(t)
	}
}

// handshakeBytes reassembles handshake messages.
func (p *parser) handshakeBytes(i int, b []byte, t time.Time) {
	d := &p.d[i]
	for len(b) > 0 {
		if d.skip > 0 {
			k := min(d.skip, len(b))
			d.skip -= k
			p.skipped += k
			b = b[k:]
			continue
		}
		if len(d.hs) == 0 && len(b) >= 4 {
			n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
			if len(b) >= 4+n {
				p.handshake(i, b[0], b[4:4+n], t)
				b = b[4+n:]
				continue
			}
		}
		if len(d.hs) < 4 {
			k := min(4-len(d.hs), len(b))
			d.hs = append(d.hs, b[:k]...)
			b = b[k:]
			if len(d.hs) < 4 {
				return
			}
		}
		n := int(d.hs[1])<<16 | int(d.hs[2])<<8 | int(d.hs[3])
		if n > maxHandshake {
			// Claimed longer than any handshake message wirescope reads:
			// skipped, not held.
			d.skip = n
			p.skipped += 4
			d.hs = d.hs[:0]
			continue
		}
		k := min(4+n-len(d.hs), len(b))
		d.hs = append(d.hs, b[:k]...)
		b = b[k:]
		if len(d.hs) == 4+n {
			p.handshake(i, d.hs[0], d.hs[4:], t)
			d.hs = d.hs[:0]
		}
	}
}

// Handshake message types.
const (
	hsClientHello         = 1
	hsServerHello         = 2
	hsNewSessionTicket    = 4
	hsEncryptedExtensions = 8
	hsCertificate         = 11
	hsFinished            = 20
	hsKeyUpdate           = 24
)

// handshake handles one handshake message side i sent.
func (p *parser) handshake(i int, typ byte, body []byte, t time.Time) {
	switch {
	case i == 0 && typ == hsClientHello:
		if p.ch != nil && !p.retry {
			return // a renegotiation's hello (TLS 1.2, rare): the first handshake stands
		}
		h, err := parseClientHello(body)
		if err != nil {
			p.malformed = err.Error()
			return
		}
		if p.ch == nil {
			p.chAt, p.ch = p.d[0].at, h
			if p.chAt.IsZero() {
				p.chAt = t
			}
		} else {
			// The second ClientHello after a HelloRetryRequest: the
			// fingerprints stay the first's.
			h.ja3, h.ja4 = p.ch.ja3, p.ch.ja4
			p.ch = h
		}
		p.chEnd, p.chSize = t, len(body)
	case i == 1 && typ == hsServerHello:
		if p.sh != nil {
			return
		}
		h, err := parseServerHello(body)
		if err != nil {
			p.malformed = err.Error()
			return
		}
		if h.retry {
			p.retry = true
			return
		}
		p.sh, p.shAt, p.shSize = h, t, len(body)
		p.alpn = h.alpn
		p.setKeys()
	case i == 1 && typ == hsEncryptedExtensions:
		if a := parseEncryptedExtensions(body); a != "" {
			p.alpn = a
		}
	case i == 1 && typ == hsCertificate && p.cert == nil:
		p.certificate(body)
	case typ == hsFinished && p.sh != nil && p.sh.version == 0x0304:
		d := &p.d[i]
		d.finished = true
		d.key = nil
		if p.sec != nil {
			app := p.sec.serverApp
			if i == 0 {
				app = p.sec.clientApp
			}
			if app != nil {
				d.key, _ = keys13(suites[uint16(p.sh.cipher)], app)
			}
		}
		if i == 0 {
			// The client's Finished ends the handshake for the client; the
			// server may still refuse it (a certificate it requires):
			// its next record says.
			p.awaitServer = true
		}
	case typ == hsKeyUpdate:
		if k := p.d[i].key; k != nil && k.s.tls13 {
			if k.update() != nil {
				p.d[i].key = nil
			}
		}
	}
}

// certificate reads the first certificate of a Certificate message.
func (p *parser) certificate(body []byte) {
	r := reader{b: body}
	if p.sh != nil && p.sh.version == 0x0304 {
		r.vec(1) // certificate_request_context
	}
	list := reader{b: r.vec(3)}
	der := list.vec(3)
	if r.bad || list.bad || len(der) == 0 {
		p.certErr = "certificate message malformed"
		return
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.certErr = "certificate not parsed: " + err.Error()
		return
	}
	p.cert = c
}

// setKeys derives the session's keys from the key log, once the
// ServerHello says which suite and version, or says why it cannot.
func (p *parser) setKeys() {
	v := p.sh.version
	s, ok := suites[uint16(p.sh.cipher)]
	switch {
	case p.ch == nil:
		p.setDecrypted("no handshake seen: the ClientHello was not captured")
		return
	case p.keys == nil:
		p.setDecrypted("no key log")
		return
	case v < 0x0303 || v > 0x0304 || !ok:
		p.setDecrypted("not decryptable: " + unsupportedWhy(uint16(p.sh.cipher), uint16(v)))
		return
	}
	p.sec = p.keys.lookup(p.ch.random)
	if p.sec == nil {
		p.setDecrypted(errNoKeys.Error())
		return
	}
	if v == 0x0304 {
		if !s.tls13 {
			p.setDecrypted("not decryptable: a TLS 1.2 suite under TLS 1.3")
			return
		}
		if p.sec.serverHS == nil && p.sec.clientHS == nil && p.sec.serverApp == nil {
			p.setDecrypted(errNoKeys.Error())
			return
		}
		if p.sec.serverHS != nil {
			p.d[1].key, _ = keys13(s, p.sec.serverHS)
		}
		if p.sec.clientHS != nil {
			p.d[0].key, _ = keys13(s, p.sec.clientHS)
		}
		return
	}
	if p.sec.master == nil {
		p.setDecrypted(errNoKeys.Error())
		return
	}
	c, sv, err := keys12(s, p.sec.master, p.ch.random, p.sh.random, p.ch.etm && p.sh.etm)
	if err != nil {
		p.setDecrypted("not decryptable: " + err.Error())
		return
	}
	p.d[0].next, p.d[1].next = c, sv
}

// setDecrypted notes the session's decryption state on the flow.
func (p *parser) setDecrypted(state string) {
	if p.decrypt == "decrypted" && state != "decrypted" {
		return
	}
	p.decrypt = state
	if p.noter != nil && p.noted != state {
		p.noted = state
		p.noter.Encrypted(state)
	}
}

// appData passes decrypted application data to the parser of what the
// session carries.
func (p *parser) appData(i int, b []byte, t time.Time) {
	if !p.done && p.sh != nil && !(i == 0 && p.awaitServer) {
		p.handshakeDone(t)
	}
	if p.tunnel == nil {
		tn, ok := p.out.(proto.Tunneler)
		if !ok {
			return
		}
		p.tunnel = tn.Tunnel(p.alpn)
	}
	p.tunnel.Feed(roleOf(i), b, t)
}

// alert handles an alert side i sent.
func (p *parser) alert(i int, level, desc byte, t time.Time) {
	name := alertName(desc)
	if !p.done && p.ch != nil {
		if desc == 0 && level != 2 {
			// close_notify before the handshake ended: the peer gave up.
			p.emit("close_notify", i, t)
			return
		}
		p.emit(name, i, t)
		return
	}
	// The first alert says who ended the session; a fatal one after a
	// close_notify says more.
	fatal := level == 2 || desc != 0 && desc != 90
	if p.noter == nil || p.closedBy != "" && (p.closedFatal || !fatal) {
		return
	}
	how := name
	if fatal {
		how = "fatal " + name
	}
	p.closedBy, p.closedFatal = how+" from "+roleOf(i).String(), fatal
	p.noter.SessionEnd(p.closedBy)
}

// handshakeDone ends the handshake as a success.
func (p *parser) handshakeDone(t time.Time) {
	if p.done || p.ch == nil || p.sh == nil {
		return
	}
	p.emit(versionName(p.sh.version), -1, t)
}

// emit emits the handshake's call with status, alerted by side from (-1:
// no alert).
func (p *parser) emit(status string, from int, t time.Time) {
	if p.done || p.ch == nil {
		return
	}
	p.done = true
	ch, sh := p.ch, p.sh
	c := &proto.Call{Proto: "tls", TS: p.chAt, Method: "handshake", Path: ch.sni, Status: status}
	c.Request.BodySize = int64(p.chSize)
	x := &c.Extra
	if sh != nil {
		c.Response.BodySize = int64(p.shSize)
		if d := p.shAt.Sub(p.chEnd); d > 0 {
			c.LatencyNS = int64(d)
		}
		x.Set("version", versionName(sh.version))
		x.Set("cipher", suiteName(sh.cipher))
	}
	if from >= 0 {
		x.Set("alert_from", roleOf(from).String())
	}
	if len(ch.alpn) > 0 {
		x.Set("alpn_offered", ch.alpn)
	}
	if p.alpn != "" {
		x.Set("alpn", p.alpn)
	}
	x.Set("ja3", ch.ja3)
	x.Set("ja4", ch.ja4)
	if sh != nil {
		x.Set("ja3s", sh.ja3s)
		x.Set("ja4s", sh.ja4s)
		if resumed := (sh.version == 0x0304 && sh.psk) || (sh.version != 0x0304 && len(sh.sessionID) > 0 && string(sh.sessionID) == string(ch.sessionID)) ||
			(sh.version != 0x0304 && p.cert == nil && p.d[1].ccs && !p.d[0].ccs); resumed {
			x.Set("resumed", true)
		}
	}
	if ch.sslv2 {
		x.Set("sslv2_hello", true)
	}
	if ch.ech {
		x.Set("ech", true)
	}
	if ch.earlyData {
		x.Set("early_data_offered", true)
	}
	if p.retry {
		x.Set("hello_retry", true)
	}
	if p.cert != nil {
		cert := p.cert
		x.Set("cert_subject", cert.Subject.String())
		var sans []string
		sans = append(sans, cert.DNSNames...)
		for _, ip := range cert.IPAddresses {
			sans = append(sans, ip.String())
		}
		if len(sans) > 0 {
			x.Set("cert_sans", sans)
		}
		x.Set("cert_issuer", cert.Issuer.String())
		x.Set("cert_not_before", cert.NotBefore.UTC().Format(time.RFC3339))
		x.Set("cert_not_after", cert.NotAfter.UTC().Format(time.RFC3339))
		if p.chAt.After(cert.NotAfter) {
			x.Set("cert_expired", true)
			if from < 0 && sh != nil {
				// The client went on with an expired certificate (it did
				// not check): still a failure, and named as one.
				c.Status = "certificate_expired"
			}
		} else if p.chAt.Before(cert.NotBefore) {
			x.Set("cert_not_yet_valid", true)
		}
	} else if p.certErr != "" {
		x.Set("cert_error", p.certErr)
	}
	if p.decrypt != "" {
		x.Set("decryption", p.decrypt)
	}
	if p.skipped > 0 {
		x.Set("handshake_bytes_skipped", p.skipped)
	}
	if sh == nil && from < 0 {
		c.Fail(proto.Unanswered, "no ServerHello")
	}
	if p.malformed != "" && c.Error == "" && status == "" {
		c.Fail(proto.Malformed, p.malformed)
	}
	p.out.Emit(c)
}

// End implements proto.StreamParser.
func (p *parser) End(reason proto.EndReason, t time.Time) {
	if p.ended {
		return
	}
	if p.ch != nil && !p.done {
		if p.sh != nil {
			p.handshakeDone(t)
		} else {
			p.emit("", -1, t)
		}
	}
	switch {
	case p.ch == nil && p.decrypt == "":
		p.setDecrypted("no handshake seen")
	case p.decrypt == "":
		// The handshake ended before a session was agreed: nothing
		// encrypted followed.
		p.setDecrypted("handshake only: no session agreed")
	}
	if p.badMACs > 0 && p.noter != nil {
		p.noter.SessionEnd("malformed: bad record MAC (" + strconv.Itoa(p.badMACs) + " records not decrypted)")
	}
	p.ended = true
	if p.tunnel != nil {
		p.tunnel.End(reason, t)
		p.tunnel = nil
	}
	p.d = [2]direction{}
	p.plain = nil
}
