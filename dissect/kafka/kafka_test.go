package kafka_test

import (
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/kafka"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// The outcomes asked of calls are the registered protocol's.
func init() { proto.Register(kafka.Protocol{}) }

// request frames req as a client sends it: size, header (v1, or v2 with
// tagged fields for a flexible version), body encoded by kmsg.
func request(req kmsg.Request, corr int32, clientID string) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// response frames resp as a broker sends it.
func response(resp kmsg.Response, corr int32) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// batch is a record batch of n records (magic 2), compressed by codec
// (attributes' low bits; the records are not really compressed: only the
// header is read).
func batch(n int, codec int16, value string) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(value)}
		var body []byte
		body = r.AppendTo(body)
		recs = append(recs, body...)
	}
	rb := kmsg.RecordBatch{Magic: 2, Attributes: codec, LastOffsetDelta: int32(n - 1), NumRecords: int32(n), Records: recs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	return raw
}

func produce(version int16, acks int16, topics map[string][]byte) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Version, r.Acks, r.TimeoutMillis = version, acks, 30000
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		recs := topics[name]
		t := kmsg.NewProduceRequestTopic()
		t.Topic = name
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = recs
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

func produceResponse(version int16, errs map[string]int16) *kmsg.ProduceResponse {
	r := kmsg.NewPtrProduceResponse()
	r.Version = version
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		code := errs[name]
		t := kmsg.NewProduceResponseTopic()
		t.Topic = name
		p := kmsg.NewProduceResponseTopicPartition()
		p.ErrorCode = code
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	return r
}

func TestDetect(t *testing.T) {
	mv := kmsg.NewPtrMetadataRequest()
	mv.Version = 12
	req := request(mv, 7, "franz")
	av3 := kmsg.NewPtrApiVersionsRequest()
	av3.Version, av3.ClientSoftwareName = 3, "kgo"
	cases := []struct {
		name string
		data []byte
		want proto.Verdict
	}{
		{"metadata v12", req, proto.Yes},
		{"cut in the client ID", req[:16], proto.Maybe},
		{"cut in the header", req[:9], proto.Maybe},
		{"whole client ID", req[:19], proto.Yes},
		{"empty client ID, whole request", request(kmsg.NewPtrApiVersionsRequest(), 1, ""), proto.Yes},
		{"empty client ID, cut", request(av3, 1, "")[:16], proto.Maybe},
		{"HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), proto.No},
		{"PostgreSQL startup", []byte("\x00\x00\x00\x29\x00\x03\x00\x00user\x00app\x00database\x00app\x00\x00"), proto.No},
		{"size too big", []byte("\x7f\x00\x00\x00\x00\x03\x00\x0c"), proto.No},
		{"unknown API key", []byte("\x00\x00\x00\x20\x7f\x00\x00\x01\x00\x00\x00\x01\x00\x00"), proto.No},
		{"binary client ID", []byte("\x00\x00\x00\x20\x00\x03\x00\x01\x00\x00\x00\x01\x00\x04\x00\x01\x02\x03"), proto.No},
	}
	for _, c := range cases {
		if v, _ := (kafka.Protocol{}).DetectStream(c.data, 50000, 9092); v != c.want {
			t.Errorf("%s: %v, want %v", c.name, v, c.want)
		}
	}
	// Only a request decides: a response's first bytes could be anything.
	if v, _ := (kafka.Protocol{}).DetectStream(response(kmsg.NewPtrMetadataResponse(), 7), 9092, 50000); v == proto.Yes {
		t.Error("a response detected as Kafka")
	}
}

func TestProduce(t *testing.T) {
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	s.Client(request(produce(9, -1, map[string][]byte{"orders": batch(3, 1, "o"), "payments": append(batch(2, 0, "p"), batch(4, 0, "q")...)}), 11, "checkout"))
	s.Client(request(produce(9, 1, map[string][]byte{"audit": batch(1, 4, "a")}), 12, "checkout"))
	// Answered in reverse: matching is by correlation ID.
	s.Server(response(produceResponse(9, map[string]int16{"audit": 0}), 12))
	s.Server(response(produceResponse(9, map[string]int16{"orders": 0, "payments": 6}), 11))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Produce", Path: "audit", Status: "OK"},
		{Method: "Produce", Path: "orders,payments", Status: "NOT_LEADER_FOR_PARTITION"},
	})
	c := calls[1]
	if c.Extra.Get("records") != int64(9) || c.Extra.Get("acks") != -1 || c.Extra.Get("client_id") != "checkout" {
		t.Errorf("extra %v", c.Extra)
	}
	if pe, _ := c.Extra.Get("partition_errors").([]string); len(pe) != 1 || pe[0] != "payments/0 NOT_LEADER_FOR_PARTITION" {
		t.Errorf("partition errors %v", c.Extra.Get("partition_errors"))
	}
	if !strings.Contains(c.Request.Body, `"orders":{"0":{"records":3,`) || !strings.Contains(c.Request.Body, `"compression":"gzip"`) {
		t.Errorf("request body %s", c.Request.Body)
	}
	if c.Outcome() != proto.ServerError {
		t.Errorf("outcome %v", c.Outcome())
	}
	if calls[0].Extra.Get("records") != int64(1) || !strings.Contains(calls[0].Request.Body, `"zstd"`) {
		t.Errorf("audit: %v %s", calls[0].Extra, calls[0].Request.Body)
	}
}

func TestProduceAcks0IsOneWay(t *testing.T) {
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	s.Client(request(produce(7, 0, map[string][]byte{"orders": batch(5, 0, "x")}), 1, "fire"))
	s.Client(request(produce(7, 0, map[string][]byte{"orders": batch(5, 0, "y")}), 2, "fire"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Produce", Path: "orders", OneWay: true},
		{Method: "Produce", Path: "orders", OneWay: true},
	})
}

// TestFlexibleAndTopicIDs: Metadata v12 (flexible, tagged fields) names
// topic IDs; a Fetch v13 by ID is then named; errors per topic.
func TestFlexibleAndTopicIDs(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	other := [16]byte{0xaa, 1}
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	for _, name := range []string{"orders", "ghost"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		mreq.Topics = append(mreq.Topics, rt)
	}
	s.Client(request(mreq, 1, "app"))
	mresp := kmsg.NewPtrMetadataResponse()
	mresp.Version = 12
	t1 := kmsg.NewMetadataResponseTopic()
	t1.Topic, t1.TopicID = kmsg.StringPtr("orders"), id
	t2 := kmsg.NewMetadataResponseTopic()
	t2.Topic, t2.ErrorCode = kmsg.StringPtr("ghost"), 3
	mresp.Topics = append(mresp.Topics, t1, t2)
	s.Server(response(mresp, 1))

	freq := kmsg.NewPtrFetchRequest()
	freq.Version = 13
	for _, tid := range [][16]byte{id, other} {
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID = tid
		ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
		freq.Topics = append(freq.Topics, ft)
	}
	s.Client(request(freq, 2, "app"))
	fresp := kmsg.NewPtrFetchResponse()
	fresp.Version = 13
	ft := kmsg.NewFetchResponseTopic()
	ft.TopicID = id
	fp := kmsg.NewFetchResponseTopicPartition()
	fp.RecordBatches = append(batch(2, 0, "a"), batch(3, 0, "b")...)
	ft.Partitions = append(ft.Partitions, fp)
	fresp.Topics = append(fresp.Topics, ft)
	s.Server(response(fresp, 2))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Metadata", Path: "orders,ghost", Status: "UNKNOWN_TOPIC_OR_PARTITION"},
		{Method: "Fetch", Path: "orders,aa010000-0000-0000-0000-000000000000", Status: "OK"},
	})
	if pe, _ := calls[0].Extra.Get("partition_errors").([]string); len(pe) != 1 || pe[0] != "ghost/-1 UNKNOWN_TOPIC_OR_PARTITION" && pe[0] != "ghost UNKNOWN_TOPIC_OR_PARTITION" {
		t.Errorf("partition errors %v", calls[0].Extra.Get("partition_errors"))
	}
	if calls[0].Outcome() != proto.ClientError {
		t.Errorf("unknown topic: outcome %v", calls[0].Outcome())
	}
	if calls[1].Extra.Get("records") != int64(5) {
		t.Errorf("fetch extra %v", calls[1].Extra)
	}
}

// TestGroup: a consumer's join; MEMBER_ID_REQUIRED is a step of the join
// (OK), REBALANCE_IN_PROGRESS a server error; ApiVersions v3's response
// header has no tagged fields.
func TestGroup(t *testing.T) {
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version, av.ClientSoftwareName, av.ClientSoftwareVersion = 3, "kgo", "1.0"
	s.Client(request(av, 1, "c"))
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 3
	avr.ApiKeys = append(avr.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: 0, MaxVersion: 11})
	s.Server(response(avr, 1))
	for i, code := range []int16{79, 0} {
		j := kmsg.NewPtrJoinGroupRequest()
		j.Version, j.Group, j.ProtocolType = 9, "billing", "consumer"
		if i == 1 {
			j.MemberID = "c-1"
		}
		s.Client(request(j, int32(2+i), "c"))
		jr := kmsg.NewPtrJoinGroupResponse()
		jr.Version, jr.ErrorCode, jr.MemberID = 9, code, "c-1"
		s.Server(response(jr, int32(2+i)))
	}
	h := kmsg.NewPtrHeartbeatRequest()
	h.Version, h.Group, h.MemberID = 4, "billing", "c-1"
	s.Client(request(h, 4, "c"))
	hr := kmsg.NewPtrHeartbeatResponse()
	hr.Version, hr.ErrorCode = 4, 27
	s.Server(response(hr, 4))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "ApiVersions", Status: "OK"},
		{Method: "JoinGroup", Path: "billing", Status: "MEMBER_ID_REQUIRED"},
		{Method: "JoinGroup", Path: "billing", Status: "OK"},
		{Method: "Heartbeat", Path: "billing", Status: "REBALANCE_IN_PROGRESS"},
	})
	want := []proto.Outcome{proto.OK, proto.OK, proto.OK, proto.ServerError}
	for i, c := range calls {
		if c.Outcome() != want[i] {
			t.Errorf("call %d: outcome %v, want %v", i, c.Outcome(), want[i])
		}
	}
	if calls[2].Extra.Get("member_id") != "c-1" || calls[3].Extra.Get("group") != "billing" {
		t.Errorf("extra %v / %v", calls[2].Extra, calls[3].Extra)
	}
	if !strings.Contains(calls[1].Request.Body, `"ProtocolType":"consumer"`) {
		t.Errorf("request body %s", calls[1].Request.Body)
	}
}

// TestSecrets: SASL PLAIN's password and SCRAM credentials are never
// kept; the user is.
func TestSecrets(t *testing.T) {
	const pass = "hunter2-sasl"
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	s.Client(request(hs, 1, "c"))
	hsr := kmsg.NewPtrSASLHandshakeResponse()
	hsr.Version = 1
	s.Server(response(hsr, 1))
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version, auth.SASLAuthBytes = 2, []byte("\x00alice\x00"+pass)
	s.Client(request(auth, 2, "c"))
	ar := kmsg.NewPtrSASLAuthenticateResponse()
	ar.Version, ar.ErrorCode, ar.ErrorMessage = 2, 58, kmsg.StringPtr("Authentication failed: Invalid username or password")
	s.Server(response(ar, 2))
	scram := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Salt, up.SaltedPassword = "bob", []byte(pass), []byte(pass)
	scram.Upsertions = append(scram.Upsertions, up)
	s.Client(request(scram, 3, "admin"))
	alter := kmsg.NewPtrAlterConfigsRequest()
	res := kmsg.NewAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = 4, "1"
	res.Configs = append(res.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: "listener.name.sasl.plain.sasl.jaas.config", Value: kmsg.StringPtr(pass)})
	alter.Resources = append(alter.Resources, res)
	s.Client(request(alter, 4, "admin"))
	calls := s.End(proto.EndFIN)
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	if calls[1].Status != "SASL_AUTHENTICATION_FAILED" || calls[1].Extra.Get("user") != "alice" {
		t.Errorf("auth: %s %v", calls[1].Status, calls[1].Extra)
	}
	for _, c := range calls {
		b, _ := c.MarshalJSON()
		if strings.Contains(string(b), pass) {
			t.Errorf("the password shows: %s", b)
		}
	}
	if !strings.Contains(calls[2].Request.Body, `"SaltedPassword":"[redacted]"`) || !strings.Contains(calls[3].Request.Body, `"Value":"[redacted]"`) {
		t.Errorf("bodies %s\n%s", calls[2].Request.Body, calls[3].Request.Body)
	}
}

// TestSplitAndGaps: byte by byte the same calls; bytes missing inside a
// produce's records leave its topics read; a gap that loses the server's
// place is found again at the next response a request waits for.
func TestSplitAndGaps(t *testing.T) {
	req := request(produce(8, 1, map[string][]byte{"orders": batch(10, 0, strings.Repeat("v", 100))}), 5, "c")
	resp := response(produceResponse(8, map[string]int16{"orders": 0}), 5)
	rec := &prototest.Recorder{}
	p := kafka.Protocol{}.NewStream(rec, &proto.Limits{})
	s := prototest.Session{T: t, Rec: rec, P: p}
	for i := range req {
		p.Feed(proto.Client, req[i:i+1], s.At())
	}
	for i := range resp {
		p.Feed(proto.Server, resp[i:i+1], s.At())
	}
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "Produce", Path: "orders", Status: "OK"}})

	s2 := prototest.NewSession(t, kafka.Protocol{}, nil)
	s2.Client(req[:len(req)-500])
	s2.P.Gap(proto.Client, 300)
	s2.Client(req[len(req)-200:])
	s2.Server(resp)
	// The server's place lost: a half response, then a response that
	// starts a segment.
	m := kmsg.NewPtrMetadataRequest()
	m.Version = 9
	s2.Client(request(m, 6, "c"))
	m2 := kmsg.NewPtrMetadataRequest()
	m2.Version = 9
	s2.Client(request(m2, 7, "c"))
	mr := kmsg.NewPtrMetadataResponse()
	mr.Version = 9
	r6 := response(mr, 6)
	s2.Server(r6[:10])
	s2.P.Gap(proto.Server, -1)
	s2.Server(r6[20:])
	s2.Server(response(mr, 7))
	calls = s2.End(proto.EndFIN)
	// The response cut keeps its request's call, without a status: what
	// it said went missing.
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Produce", Path: "orders", Status: "OK", Err: "truncated: 300 bytes of the request missing from the capture"},
		{Method: "Metadata", Err: "truncated: " + strconv.Itoa(len(r6)-10) + " bytes of the response missing from the capture"},
		{Method: "Metadata", Status: "OK"},
	})
}

func TestMalformed(t *testing.T) {
	s := prototest.NewSession(t, kafka.Protocol{}, nil)
	a := kmsg.NewPtrApiVersionsRequest()
	s.Client(request(a, 1, "c"))
	s.Server("\x7f\xff\xff\xff\x00\x00\x00\x01")
	s.Client(request(a, 2, "c"))
	s.Server(response(kmsg.NewPtrApiVersionsResponse(), 2))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "ApiVersions", Err: "malformed: response: message size 2147483647 out of range"},
		{Method: "ApiVersions", Status: "OK"},
	})
}

// TestCorrelation: a Metadata call's topic IDs name, from then on, the
// IDs of calls on other connections; before it, they stay IDs.
func TestCorrelation(t *testing.T) {
	id := "01020304-0506-0708-090a-0b0c0d0e0f10"
	corr := kafka.Protocol{}.NewCorrelation()
	early := &proto.Call{Proto: "kafka", Method: "Produce", Path: id}
	corr(early)
	meta := &proto.Call{Proto: "kafka", Method: "Metadata", Path: "orders"}
	meta.Extra.Set("topic_ids", proto.Extra{{Key: id, Value: "orders"}})
	corr(meta)
	late := &proto.Call{Proto: "kafka", Method: "Produce", Path: id + ",aa010000-0000-0000-0000-000000000000"}
	late.Extra.Set("partition_errors", []string{id + "/2 NOT_LEADER_OR_FOLLOWER", id + " UNKNOWN_TOPIC_ID"})
	corr(late)
	if early.Path != id || late.Path != "orders,aa010000-0000-0000-0000-000000000000" {
		t.Errorf("paths %q, %q", early.Path, late.Path)
	}
	if pe := late.Extra.Get("partition_errors").([]string); pe[0] != "orders/2 NOT_LEADER_OR_FOLLOWER" || pe[1] != "orders UNKNOWN_TOPIC_ID" {
		t.Errorf("partition errors %q", pe)
	}
}
