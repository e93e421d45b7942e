package capture

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// benchFile is a capture of 200,000 Ethernet frames of 60 to 1459 bytes,
// classic pcap or pcapng.
func benchFile(b *testing.B, ng bool) []byte {
	var buf bytes.Buffer
	data := make([]byte, 700)
	t0 := time.Unix(1e9, 0)
	if ng {
		w, _ := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
		for i := range 200000 {
			w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i)), CaptureLength: 60 + i%1400, Length: 60 + i%1400}, append(data, data...)[:60+i%1400])
		}
		w.Flush()
		return buf.Bytes()
	}
	w := pcapgo.NewWriterNanos(&buf)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for i := range 200000 {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i)), CaptureLength: 60 + i%1400, Length: 60 + i%1400}, append(data, data...)[:60+i%1400])
	}
	return buf.Bytes()
}

// benchRead measures reading every packet of benchFile from memory.
func benchRead(b *testing.B, ng bool) {
	raw := benchFile(b, ng)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		src, err := NewReader("x", bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		var p Packet
		n := 0
		for src.Next(&p) != io.EOF {
			n++
		}
		if n != 200000 {
			b.Fatal(n)
		}
	}
}

func BenchmarkReadPcap(b *testing.B)   { benchRead(b, false) }
func BenchmarkReadPcapng(b *testing.B) { benchRead(b, true) }
