// Command kfake-broker runs franz-go's kfake cluster (an in-process Kafka
// broker written in Go) on a given address, for the recordings of
// scripts/record-kafka.sh, and logs every request it handles.
//
// Every broker connection is wrapped as it is accepted: the bytes the client
// sends are cut into Kafka request frames and the bytes the broker writes
// into response frames, both decoded with kmsg, and each request is written
// to the log file (-log) as one JSON line once its response is written (an
// acks=0 Produce, which is never answered, at once; a request a connection
// closed on before its answer, at the close), with its connection's other
// events:
//
//	{"event":"open","conn":1,"client":"127.0.0.1:40000"}
//	{"event":"request","conn":1,"client":"127.0.0.1:40000","corr":0,
//	 "api_key":18,"api":"ApiVersions","version":4,"client_id":"kgo",
//	 "topics":[...],"group":"...","acks":-1,"records":n,"codecs":["gzip"],
//	 "one_way":true,"answered":true,"errors":["UNKNOWN_TOPIC_OR_PARTITION"],
//	 "error_count":n,"records_returned":n}
//	{"event":"close","conn":1,"client":"127.0.0.1:40000"}
//
// topics are the topic names the request holds (topic IDs resolved from the
// Metadata answers seen so far); errors are the distinct error names
// (kerr) of the response's non-zero ErrorCode fields, error_count how many
// such fields; records and codecs (Produce) are the record batches' record
// counts and compression codecs; records_returned (Fetch) the records of the
// batches the response carries. A kfake control function on every key
// counts what kfake itself handled; the counts are compared with the wire's
// at exit, and written as a last line {"event":"summary",...}.
//
// It prints "ready" on stdout once it listens, and stops on SIGTERM or
// SIGINT.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	listen := flag.String("listen", "127.0.0.45:19092", "host:port of the first broker; further brokers take the next ports")
	brokers := flag.Int("brokers", 1, "number of brokers")
	topics := flag.String("topics", "", "comma-separated topics to create at start (auto-creation stays off)")
	partitions := flag.Int("partitions", 3, "partitions of each topic of -topics")
	saslUser := flag.String("sasl-user", "", "enable SASL with this PLAIN superuser")
	saslPass := flag.String("sasl-pass", "", "its password")
	logPath := flag.String("log", "", "request log (JSON lines); required")
	flag.Parse()
	if *logPath == "" {
		log.Fatal("-log is required")
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("-listen: %v", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		log.Fatalf("-listen: %v", err)
	}
	f, err := os.Create(*logPath)
	if err != nil {
		log.Fatal(err)
	}
	rl := &reqLog{w: bufio.NewWriter(f), wire: map[string]int{}, handled: map[string]int{}, topicIDs: map[[16]byte]string{}}

	var ports []int
	for i := 0; i < *brokers; i++ {
		ports = append(ports, port+i)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(*brokers),
		kfake.Ports(ports...),
		kfake.ClusterID("wirescope-kfake"),
		// kfake listens on 127.0.0.1:PORT; the listener is ours, on the
		// host asked for, and wraps each connection.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return &tapListener{Listener: ln, log: rl}, nil
		}),
	}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	if *saslUser != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("PLAIN", *saslUser, *saslPass))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		log.Fatal(err)
	}
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		rl.mu.Lock()
		rl.handled[kmsg.NameForKey(req.Key())]++
		rl.mu.Unlock()
		return nil, nil, false
	})
	fmt.Println("ready", strings.Join(c.ListenAddrs(), ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	// Requests kfake handled but the wire did not show answered or
	// closed on cannot be: a difference is reported, not hidden.
	mismatch := map[string][2]int{}
	for k, v := range rl.handled {
		if rl.wire[k] != v {
			mismatch[k] = [2]int{rl.wire[k], v}
		}
	}
	for k, v := range rl.wire {
		if rl.handled[k] != v {
			mismatch[k] = [2]int{v, rl.handled[k]}
		}
	}
	rl.writeLocked(map[string]any{"event": "summary", "wire": rl.wire, "handled": rl.handled, "mismatch": mismatch})
	if err := rl.w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if len(mismatch) > 0 {
		log.Printf("kfake handled other requests than the wire shows (wire, handled): %v", mismatch)
		os.Exit(2)
	}
}

// reqLog is the JSON-lines log, shared by all connections.
type reqLog struct {
	mu       sync.Mutex
	w        *bufio.Writer
	conns    int
	wire     map[string]int      // requests seen on the wire, by API name
	handled  map[string]int      // requests kfake's control function saw
	topicIDs map[[16]byte]string // from Metadata answers
}

func (l *reqLog) write(v map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked(v)
}

func (l *reqLog) writeLocked(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatalf("log: %v", err)
	}
	l.w.Write(append(b, '\n'))
	// Flushed at every line: the script reads the log while we run.
	if err := l.w.Flush(); err != nil {
		log.Fatalf("log: %v", err)
	}
}

type tapListener struct {
	net.Listener
	log *reqLog
}

func (t *tapListener) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t.log.mu.Lock()
	t.log.conns++
	id := t.log.conns
	t.log.mu.Unlock()
	tc := &tapConn{Conn: c, log: t.log, id: id, client: c.RemoteAddr().String(), pending: map[int32]*pendingReq{}}
	t.log.write(map[string]any{"event": "open", "conn": id, "client": tc.client})
	return tc, nil
}

type pendingReq struct {
	key, version int16
	entry        map[string]any
}

// tapConn cuts the connection's bytes into frames: requests in Read,
// responses in Write (kfake reads and writes in two goroutines).
type tapConn struct {
	net.Conn
	log    *reqLog
	id     int
	client string

	mu        sync.Mutex
	in, out   []byte
	pending   map[int32]*pendingReq
	closed    bool
	broken    bool // a frame we could not read: we stop decoding
	rawSASL   bool // after a v0 SaslHandshake: the next frame is raw SASL bytes
	inFrames  int
	outFrames int
}

func (t *tapConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.mu.Lock()
		t.in = append(t.in, p[:n]...)
		for !t.broken {
			frame, ok := t.next(&t.in)
			if !ok {
				break
			}
			t.request(frame)
		}
		t.mu.Unlock()
	}
	if err != nil {
		t.finish()
	}
	return n, err
}

func (t *tapConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.out = append(t.out, p...)
	for !t.broken {
		frame, ok := t.next(&t.out)
		if !ok {
			break
		}
		t.response(frame)
	}
	t.mu.Unlock()
	return t.Conn.Write(p)
}

func (t *tapConn) Close() error {
	t.finish()
	return t.Conn.Close()
}

// finish logs what was never answered and the close, once.
func (t *tapConn) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	corrs := make([]int, 0, len(t.pending))
	for c := range t.pending {
		corrs = append(corrs, int(c))
	}
	sort.Ints(corrs)
	for _, c := range corrs {
		p := t.pending[int32(c)]
		p.entry["answered"] = false
		t.emit(p.entry)
	}
	t.pending = nil
	t.log.write(map[string]any{"event": "close", "conn": t.id, "client": t.client})
}

func (t *tapConn) emit(e map[string]any) {
	t.log.mu.Lock()
	t.log.wire[e["api"].(string)]++
	t.log.writeLocked(e)
	t.log.mu.Unlock()
}

// next takes one size-prefixed frame off buf.
func (t *tapConn) next(buf *[]byte) ([]byte, bool) {
	b := *buf
	if len(b) < 4 {
		return nil, false
	}
	size := int(int32(binary.BigEndian.Uint32(b)))
	if size < 0 || size > 256<<20 {
		t.broken = true
		log.Printf("conn %d: frame size %d: no longer decoding", t.id, size)
		return nil, false
	}
	if len(b) < 4+size {
		return nil, false
	}
	frame := append([]byte(nil), b[4:4+size]...)
	*buf = b[4+size:]
	if len(*buf) == 0 {
		*buf = nil
	}
	return frame, true
}

func (t *tapConn) request(frame []byte) {
	t.inFrames++
	if t.rawSASL {
		// SaslHandshake v0: the SASL bytes follow unframed by Kafka.
		t.rawSASL = false
		t.emit(map[string]any{"event": "raw_sasl", "api": "raw SASL", "conn": t.id, "client": t.client})
		return
	}
	if len(frame) < 10 {
		t.broken = true
		return
	}
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	e := map[string]any{"event": "request", "conn": t.id, "client": t.client, "corr": corr,
		"api_key": key, "api": kmsg.NameForKey(key), "version": version}
	rest := frame[8:]
	idLen := int(int16(binary.BigEndian.Uint16(rest)))
	rest = rest[2:]
	if idLen >= 0 {
		if idLen > len(rest) {
			t.broken = true
			return
		}
		e["client_id"] = string(rest[:idLen])
		rest = rest[idLen:]
	}
	req := kmsg.RequestForKey(key)
	if req == nil {
		e["decode_error"] = "unknown key"
	} else {
		req.SetVersion(version)
		body := rest
		if req.IsFlexible() {
			body = skipTags(rest)
		}
		if body == nil {
			e["decode_error"] = "header tags"
		} else if err := req.ReadFrom(body); err != nil {
			e["decode_error"] = err.Error()
		} else {
			t.describeRequest(req, e)
		}
	}
	if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
		e["one_way"] = true
		e["answered"] = false
		t.emit(e)
		return
	}
	t.pending[corr] = &pendingReq{key: key, version: version, entry: e}
}

func (t *tapConn) response(frame []byte) {
	t.outFrames++
	if len(frame) < 4 {
		t.broken = true
		return
	}
	corr := int32(binary.BigEndian.Uint32(frame))
	p, ok := t.pending[corr]
	if !ok {
		// A raw SASL answer after a v0 handshake, or one we lost.
		log.Printf("conn %d: a response to correlation ID %d, which no pending request has", t.id, corr)
		return
	}
	delete(t.pending, corr)
	e := p.entry
	e["answered"] = true
	resp := kmsg.ResponseForKey(p.key)
	body := frame[4:]
	if resp != nil {
		resp.SetVersion(p.version)
		// ApiVersions answers have the v0 response header always.
		if resp.IsFlexible() && p.key != int16(kmsg.ApiVersions) {
			body = skipTags(body)
		}
		err := fmt.Errorf("header tags")
		if body != nil {
			err = resp.ReadFrom(body)
		}
		if err != nil && p.key == int16(kmsg.ApiVersions) {
			// An unsupported ApiVersions version is answered as v0.
			resp.SetVersion(0)
			err = resp.ReadFrom(frame[4:])
		}
		if err != nil {
			e["decode_error"] = "response: " + err.Error()
		} else {
			t.describeResponse(resp, e)
			if hs, ok := resp.(*kmsg.SASLHandshakeResponse); ok && hs.Version == 0 && hs.ErrorCode == 0 {
				t.rawSASL = true
			}
		}
	}
	t.emit(e)
}

// skipTags skips a flexible header's tagged fields; nil if they are cut.
func skipTags(b []byte) []byte {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil
	}
	b = b[w:]
	for i := uint64(0); i < n; i++ {
		_, w = binary.Uvarint(b)
		if w <= 0 {
			return nil
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < size {
			return nil
		}
		b = b[w+int(size):]
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

func (t *tapConn) describeRequest(req kmsg.Request, e map[string]any) {
	topics := map[string]bool{}
	var ids [][16]byte
	walk(reflect.ValueOf(req), func(name string, v reflect.Value) {
		switch {
		case name == "Topic" && v.Kind() == reflect.String && v.String() != "":
			topics[v.String()] = true
		case name == "Topic" && v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.String:
			topics[v.Elem().String()] = true
		case name == "TopicID" && v.Type() == reflect.TypeOf([16]byte{}):
			ids = append(ids, v.Interface().([16]byte))
		}
	})
	t.log.mu.Lock()
	for _, id := range ids {
		if id == ([16]byte{}) {
			continue
		}
		if name, ok := t.log.topicIDs[id]; ok {
			topics[name] = true
		} else {
			topics["id:"+hex.EncodeToString(id[:])] = true
		}
	}
	t.log.mu.Unlock()
	if len(topics) > 0 {
		e["topics"] = sortedKeys(topics)
	}
	if g := reflect.ValueOf(req).Elem().FieldByName("Group"); g.IsValid() && g.Kind() == reflect.String {
		e["group"] = g.String()
	}
	if pr, ok := req.(*kmsg.ProduceRequest); ok {
		e["acks"] = pr.Acks
		records := 0
		codecs := map[string]bool{}
		for _, tp := range pr.Topics {
			for _, p := range tp.Partitions {
				n, cs := batches(p.Records)
				records += n
				for _, c := range cs {
					codecs[c] = true
				}
			}
		}
		e["records"] = records
		e["codecs"] = sortedKeys(codecs)
	}
}

func (t *tapConn) describeResponse(resp kmsg.Response, e map[string]any) {
	errs := map[string]bool{}
	count := 0
	walk(reflect.ValueOf(resp), func(name string, v reflect.Value) {
		if name == "ErrorCode" && v.Kind() == reflect.Int16 && v.Int() != 0 {
			count++
			code := int16(v.Int())
			if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && ke.Code == code {
				errs[ke.Message] = true
			} else {
				errs["ERROR_"+strconv.Itoa(int(code))] = true
			}
		}
	})
	if count > 0 {
		e["errors"] = sortedKeys(errs)
		e["error_count"] = count
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		t.log.mu.Lock()
		for _, tp := range r.Topics {
			if tp.Topic != nil && tp.TopicID != ([16]byte{}) {
				t.log.topicIDs[tp.TopicID] = *tp.Topic
			}
		}
		t.log.mu.Unlock()
	case *kmsg.FetchResponse:
		n := 0
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				k, _ := batches(p.RecordBatches)
				n += k
			}
		}
		e["records_returned"] = n
	}
}

// batches counts the records of v2 record batches and names their codecs.
func batches(b []byte) (int, []string) {
	n := 0
	var codecs []string
	for len(b) >= 61 {
		length := int(int32(binary.BigEndian.Uint32(b[8:])))
		if length < 49 || len(b) < 12+length || b[16] != 2 {
			break
		}
		attrs := binary.BigEndian.Uint16(b[21:])
		codecs = append(codecs, [...]string{"none", "gzip", "snappy", "lz4", "zstd", "5", "6", "7"}[attrs&7])
		n += int(int32(binary.BigEndian.Uint32(b[57:])))
		b = b[12+length:]
	}
	return n, codecs
}

// walk calls fn on every struct field, at any depth, with its name.
func walk(v reflect.Value, fn func(string, reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walk(v.Elem(), fn)
		}
	case reflect.Struct:
		ty := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if !ty.Field(i).IsExported() {
				continue
			}
			fn(ty.Field(i).Name, v.Field(i))
			walk(v.Field(i), fn)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), fn)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
