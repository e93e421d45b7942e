package capturetest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
)

// PCAPWriter writes packets to a classic pcap file (nanosecond
// timestamps, Ethernet); its Emit method is a Conn's Emit.
type PCAPWriter struct {
	bw      *bufio.Writer
	w       *pcapgo.Writer
	err     error
	Packets int
}

// NewPCAPWriter writes the file header to w.
func NewPCAPWriter(w io.Writer) (*PCAPWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	return &PCAPWriter{bw: bw, w: pw}, nil
}

// Emit writes one packet; the first error is kept for Flush.
func (p *PCAPWriter) Emit(pkt capture.Packet) {
	if p.err != nil {
		return
	}
	p.err = p.w.WritePacket(gopacket.CaptureInfo{Timestamp: pkt.Timestamp, CaptureLength: len(pkt.Data), Length: pkt.Length}, pkt.Data)
	p.Packets++
}

// Flush writes what is buffered and returns the first error.
func (p *PCAPWriter) Flush() error {
	if p.err != nil {
		return p.err
	}
	return p.bw.Flush()
}

// Load describes synthetic HTTP/1.1 traffic: Conns keep-alive connections
// from 10.1.x.y clients to Server, each carrying Requests request/response
// pairs, one connection after another from Start.
type Load struct {
	Conns, Requests int
	Server          string // default "10.0.0.80:80"
	Start           time.Time
	// RespBody is the size of every response body; default a 36-byte JSON
	// object.
	RespBody int
	// MSS is the segment size (default 1448): a small one makes many
	// packets per call.
	MSS int
}

// loadStatuses are the statuses Load's responses cycle through: most succeed,
// one in ten is a 404 and one in twenty a 503.
var loadStatuses = [20]int{200, 200, 404, 200, 200, 200, 200, 503, 200, 200, 200, 200, 404, 200, 200, 201, 200, 200, 200, 200}

// Emit generates the traffic into emit and returns the time after it.
func (l Load) Emit(emit func(capture.Packet)) time.Time {
	server := l.Server
	if server == "" {
		server = "10.0.0.80:80"
	}
	t := l.Start
	if t.IsZero() {
		t = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	}
	body := []byte(`{"id":42,"items":[1,2,3],"ok":true}`)
	if l.RespBody > 0 {
		body = make([]byte, l.RespBody)
		for i := range body {
			body[i] = 'a' + byte(i%26)
		}
	}
	for i := range l.Conns {
		client := fmt.Sprintf("10.1.%d.%d:%d", i/250%250, i%250+1, 30000+i%30000)
		c := NewConn(client, server, t, emit)
		c.MSS = l.MSS
		c.Handshake()
		for j := range l.Requests {
			c.Send(true, fmt.Appendf(nil, "GET /api/items/%d HTTP/1.1\r\nHost: shop\r\nUser-Agent: load\r\n\r\n", j))
			st := loadStatuses[(i+j)%len(loadStatuses)]
			c.Send(false, fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				st, statusText(st), len(body), body))
		}
		c.Close()
		t = c.T
	}
	return t
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 404:
		return "Not Found"
	}
	return "Service Unavailable"
}

// PCAPFile is a pcap file being written.
type PCAPFile struct {
	*PCAPWriter
	f *os.File
}

// CreatePCAP creates a pcap file to Emit packets into.
func CreatePCAP(path string) (*PCAPFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := NewPCAPWriter(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &PCAPFile{w, f}, nil
}

// Close flushes and closes the file.
func (p *PCAPFile) Close() error {
	err := p.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteLoad writes l's traffic to a pcap file and returns its packet count.
func WriteLoad(path string, l Load) (int, error) {
	f, err := CreatePCAP(path)
	if err != nil {
		return 0, err
	}
	l.Emit(f.Emit)
	return f.Packets, f.Close()
}
