package tls_test

import (
	"bytes"
	stdtls "crypto/tls"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls"
)

// encodeLog packs recorded chunks as the fuzzer's input: a role byte, a
// 2-byte length, the bytes.
func encodeLog(log []chunk) []byte {
	var b []byte
	for _, c := range log {
		for off := 0; off < len(c.B); off += 0xffff {
			part := c.B[off:min(len(c.B), off+0xffff)]
			b = append(b, byte(c.Role))
			b = binary.BigEndian.AppendUint16(b, uint16(len(part)))
			b = append(b, part...)
		}
	}
	return b
}

var fuzzKeys struct {
	sync.Once
	keys  *tls.KeyLog
	seeds [][]byte
}

// FuzzParser: whatever the bytes each side sends (seeded with real
// sessions of TLS 1.2 and 1.3, decrypted with their key log), the parser
// neither panics nor keeps more than its bounds, and its calls encode as
// valid JSON.
func FuzzParser(f *testing.F) {
	fuzzKeys.Do(func() {
		cert, pool := validCert(f)
		var all bytes.Buffer
		for _, v := range []uint16{stdtls.VersionTLS12, stdtls.VersionTLS13} {
			ccfg := &stdtls.Config{RootCAs: pool, ServerName: "tls.test", MinVersion: v, MaxVersion: v, NextProtos: []string{"h2", "http/1.1"}}
			scfg := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, MinVersion: v, MaxVersion: v, NextProtos: []string{"http/1.1"}}
			log, keys, err := exchange(f, ccfg, scfg, []string{"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n", "more"})
			if err != nil {
				f.Fatal(err)
			}
			all.Write(keys)
			fuzzKeys.seeds = append(fuzzKeys.seeds, encodeLog(log))
		}
		fuzzKeys.keys, _ = tls.ParseKeyLog(&all)
	})
	for _, s := range fuzzKeys.seeds {
		f.Add(s)
	}
	ch, sh := hellos()
	f.Add(encodeLog([]chunk{{Role: proto.Client, B: ch}, {Role: proto.Server, B: sh}, {Role: proto.Server, B: record(21, []byte{2, 40})}}))
	f.Add([]byte{1, 0, 5, 0x80, 0x2e, 1, 3, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &session{}
		p := tls.Protocol{Keys: fuzzKeys.keys}.NewStream(s, &proto.Limits{})
		at := time.Unix(1e9, 0)
		for len(in) >= 3 {
			role := proto.Role(in[0]%2 + 1)
			n := min(int(binary.BigEndian.Uint16(in[1:])), len(in)-3)
			if in[0]&0x80 != 0 {
				p.Gap(role, n)
			} else {
				p.Feed(role, in[3:3+n], at)
			}
			if b := p.(proto.Buffering).Buffered(); b > 2*(256<<10)+4*(1<<14+2048+5) {
				t.Fatalf("the parser keeps %d bytes", b)
			}
			in = in[3+n:]
			at = at.Add(time.Millisecond)
		}
		p.End(proto.EndFIN, at)
		for _, c := range s.Calls {
			if !json(c) {
				t.Fatalf("call does not encode: %+v", c)
			}
		}
	})
}
