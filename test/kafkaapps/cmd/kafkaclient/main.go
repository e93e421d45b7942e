// Command kafkaclient runs one named scenario of franz-go (kgo) clients
// against a Kafka broker, for scripts/record-kafka.sh, and prints a JSON
// report of what it did on stdout:
//
//	{"scenario", "clients": n, "produced": {"TOPIC": {"records": n, "acks":
//	 "all"|"leader"|"none", "codec": "gzip"|...}} (one entry per topic and
//	 client settings, as a list), "records_produced": n, "records_consumed":
//	 n, "consumed": {"TOPIC": n}, "group": "...", "errors": {"KAFKA_ERROR": n}
//	 (the errors the client got back, by kerr name), "other_errors": [...],
//	 "requests": {"Produce": n, ...} (written by the clients, counted by a
//	 kgo.HookBrokerWrite hook), "connections": n (kgo.HookBrokerConnect)}
//
// Scenarios (-scenario):
//
//	produce        four producers in turn (gzip, snappy, lz4, zstd), acks=all,
//	               idempotent: -records records spread evenly over -topics
//	produce-acks0  one producer, acks=0, idempotency off: -records records
//	               to the first topic (Produce requests nobody answers)
//	consume-group  a consumer in group -group reading the first topic from
//	               the start until -records records, committing them, staying
//	               in the group a second (heartbeats), then leaving it
//	unknown-topic  a producer of one record to -topics' first (missing)
//	               topic, failing on metadata; then a raw Metadata request and
//	               a raw Produce request (v12, acks=1) for that topic
//	sasl           a SASL/PLAIN producer (-sasl-user, -sasl-pass) of -records
//	               records to the first topic; then a client with the wrong
//	               password (-sasl-wrong) sending one Metadata request
//	bulk           a producer at full speed (linger 5 ms, acks=1, no
//	               compression, 100-byte values, batches up to 16 KiB) of
//	               -records records to the first topic, then a consumer (no
//	               group, fetches up to 64 KiB) reading them back
//
// -names prints the API names by key (kmsg.NameForKey) as a JSON object
// instead.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/wirescope/wirescope/test/kafkaapps/internal/hooks"
)

type produced struct {
	Topic   string `json:"topic"`
	Records int    `json:"records"`
	Acks    string `json:"acks"`
	Codec   string `json:"codec"`
}

type report struct {
	Scenario        string         `json:"scenario"`
	Clients         int            `json:"clients"`
	Produced        []produced     `json:"produced"`
	RecordsProduced int            `json:"records_produced"`
	RecordsConsumed int            `json:"records_consumed"`
	Consumed        map[string]int `json:"consumed"`
	Group           string         `json:"group,omitempty"`
	Errors          map[string]int `json:"errors"`
	OtherErrors     []string       `json:"other_errors"`
	Requests        map[string]int `json:"requests"`
	Connections     int            `json:"connections"`
}

func main() {
	brokers := flag.String("brokers", "127.0.0.45:19092", "seed brokers, comma-separated")
	scenario := flag.String("scenario", "", "scenario to run")
	topicsFlag := flag.String("topics", "orders,payments,events", "topics, comma-separated")
	records := flag.Int("records", 300, "records to produce or consume")
	group := flag.String("group", "billing", "consumer group (consume-group)")
	saslUser := flag.String("sasl-user", "", "SASL/PLAIN user")
	saslPass := flag.String("sasl-pass", "", "its password")
	saslWrong := flag.String("sasl-wrong", "", "a wrong password (sasl)")
	names := flag.Bool("names", false, "print the API names by key and exit")
	flag.Parse()
	if *names {
		m := map[string]string{}
		for k := int16(0); k < 200; k++ {
			if n := kmsg.NameForKey(k); n != "" && n != "Unknown" {
				m[strconv.Itoa(int(k))] = n
			}
		}
		out(m)
		return
	}
	r := &runner{
		seeds:  strings.Split(*brokers, ","),
		topics: strings.Split(*topicsFlag, ","),
		hooks:  hooks.New(),
		rep: &report{Scenario: *scenario, Produced: []produced{}, Consumed: map[string]int{},
			Errors: map[string]int{}, OtherErrors: []string{}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	switch *scenario {
	case "produce":
		err = r.produce(ctx, *records)
	case "produce-acks0":
		err = r.produceAcks0(ctx, *records)
	case "consume-group":
		err = r.consumeGroup(ctx, *group, *records)
	case "unknown-topic":
		err = r.unknownTopic(ctx)
	case "sasl":
		err = r.sasl(ctx, *saslUser, *saslPass, *saslWrong, *records)
	case "bulk":
		err = r.bulk(ctx, *records)
	default:
		log.Fatalf("unknown scenario %q", *scenario)
	}
	r.rep.Requests, r.rep.Connections = r.hooks.Snapshot()
	out(r.rep)
	if err != nil {
		log.Fatalf("%s: %v", *scenario, err)
	}
}

func out(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		log.Fatal(err)
	}
}

type runner struct {
	seeds  []string
	topics []string
	hooks  *hooks.Counts
	rep    *report
}

func (r *runner) client(id string, opts ...kgo.Opt) (*kgo.Client, error) {
	r.rep.Clients++
	opts = append([]kgo.Opt{kgo.SeedBrokers(r.seeds...), kgo.ClientID(id), kgo.WithHooks(r.hooks)}, opts...)
	return kgo.NewClient(opts...)
}

// fail records an error the client got back.
func (r *runner) fail(err error) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		r.rep.Errors[ke.Message]++
		return
	}
	r.rep.OtherErrors = append(r.rep.OtherErrors, err.Error())
}

func (r *runner) failCode(code int16) {
	if code != 0 {
		r.fail(kerr.ErrorForCode(code))
	}
}

func value(topic string, i int, codec string) []byte {
	// Compressible (repeated field names), so that every codec wins and
	// the batches go compressed.
	return fmt.Appendf(nil, `{"topic":%q,"seq":%d,"codec":%q,"status":"created","note":"order placed by the checkout service","items":[{"sku":"sku-%04d","qty":1},{"sku":"sku-%04d","qty":2}]}`,
		topic, i, codec, i%97, (i*7)%97)
}

func (r *runner) produce(ctx context.Context, n int) error {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}}
	per := n / (len(codecs) * len(r.topics))
	if per*len(codecs)*len(r.topics) != n {
		return fmt.Errorf("-records %d is not a multiple of %d", n, len(codecs)*len(r.topics))
	}
	seq := 0
	for _, c := range codecs {
		cl, err := r.client("producer-"+c.name, kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			return err
		}
		for _, t := range r.topics {
			recs := make([]*kgo.Record, per)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: t, Key: fmt.Appendf(nil, "k%d", seq%10), Value: value(t, seq, c.name)}
				seq++
			}
			res := cl.ProduceSync(ctx, recs...)
			ok := 0
			for _, pr := range res {
				if pr.Err != nil {
					r.fail(pr.Err)
				} else {
					ok++
				}
			}
			r.rep.Produced = append(r.rep.Produced, produced{Topic: t, Records: ok, Acks: "all", Codec: c.name})
			r.rep.RecordsProduced += ok
		}
		cl.Close()
	}
	if len(r.rep.Errors)+len(r.rep.OtherErrors) > 0 {
		return errors.New("produce failed")
	}
	return nil
}

func (r *runner) produceAcks0(ctx context.Context, n int) error {
	cl, err := r.client("producer-acks0", kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	t := r.topics[0]
	// In rounds, so that there are several Produce requests.
	sent := 0
	for round := 0; round < 5; round++ {
		var recs []*kgo.Record
		for i := 0; i < n/5; i++ {
			recs = append(recs, &kgo.Record{Topic: t, Value: value(t, sent, "none")})
			sent++
		}
		for _, pr := range cl.ProduceSync(ctx, recs...) {
			if pr.Err != nil {
				r.fail(pr.Err)
			} else {
				r.rep.RecordsProduced++
			}
		}
	}
	// Nothing answers: give the broker time to read the last requests
	// before the connection closes.
	time.Sleep(300 * time.Millisecond)
	cl.Close()
	r.rep.Produced = append(r.rep.Produced, produced{Topic: t, Records: r.rep.RecordsProduced, Acks: "none", Codec: "none"})
	if r.rep.RecordsProduced != n {
		return fmt.Errorf("%d of %d records sent", r.rep.RecordsProduced, n)
	}
	return nil
}

func (r *runner) consumeGroup(ctx context.Context, group string, n int) error {
	t := r.topics[0]
	r.rep.Group = group
	cl, err := r.client("consumer-"+group, kgo.ConsumerGroup(group), kgo.ConsumeTopics(t),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.HeartbeatInterval(300*time.Millisecond), kgo.SessionTimeout(6*time.Second),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for r.rep.RecordsConsumed < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("consumed %d of %d records: %w", r.rep.RecordsConsumed, n, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { r.fail(err) })
		fs.EachRecord(func(rec *kgo.Record) {
			r.rep.RecordsConsumed++
			r.rep.Consumed[rec.Topic]++
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		r.fail(err)
	}
	// Stay in the group for a few heartbeats.
	poll, cancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	fs := cl.PollFetches(poll)
	cancel()
	fs.EachRecord(func(*kgo.Record) { r.rep.RecordsConsumed++ })
	cl.Close() // leaves the group
	if r.rep.RecordsConsumed != n {
		return fmt.Errorf("consumed %d records, want %d", r.rep.RecordsConsumed, n)
	}
	return nil
}

func (r *runner) unknownTopic(ctx context.Context) error {
	t := r.topics[0]
	// Produce v13 names topics by ID alone (a missing topic has none):
	// Produce is held to v12, which names it.
	versions := kversion.Tip()
	versions.SetMaxKeyVersion(int16(kmsg.Produce), 12)
	cl, err := r.client("producer-unknown", kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.MaxVersions(versions),
		kgo.UnknownTopicRetries(1), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		return err
	}
	defer cl.Close()
	// kgo asks for the topic's metadata and fails the record when the
	// topic stays unknown: no Produce request is sent.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: t, Value: []byte("lost")}).FirstErr(); err != nil {
		r.fail(err)
	} else {
		return errors.New("a record to a missing topic was produced")
	}
	seed := cl.SeedBrokers()[0]
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(t)
	mreq.Topics = append(mreq.Topics, mt)
	mreq.AllowAutoTopicCreation = false
	kresp, err := seed.Request(ctx, mreq)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	for _, mt := range kresp.(*kmsg.MetadataResponse).Topics {
		r.failCode(mt.ErrorCode)
	}
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = 1
	preq.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = t
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = recordBatch([][]byte{[]byte("raw-1"), []byte("raw-2")})
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	kresp, err = seed.Request(ctx, preq)
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for _, rt := range kresp.(*kmsg.ProduceResponse).Topics {
		for _, rp := range rt.Partitions {
			r.failCode(rp.ErrorCode)
		}
	}
	if r.rep.Errors[kerr.UnknownTopicOrPartition.Message] != 3 {
		return fmt.Errorf("errors %v, want UNKNOWN_TOPIC_OR_PARTITION three times", r.rep.Errors)
	}
	return nil
}

// recordBatch is a v2 record batch, uncompressed, of the values.
func recordBatch(values [][]byte) []byte {
	var recs []byte
	for i, v := range values {
		var rec []byte
		rec = append(rec, 0)                          // attributes
		rec = binary.AppendVarint(rec, 0)             // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))      // offset delta
		rec = binary.AppendVarint(rec, -1)            // no key
		rec = binary.AppendVarint(rec, int64(len(v))) // value
		rec = append(rec, v...)
		rec = binary.AppendVarint(rec, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(rec)))
		recs = append(recs, rec...)
	}
	now := time.Now().UnixMilli()
	var tail []byte // from attributes on: what the CRC covers
	tail = binary.BigEndian.AppendUint16(tail, 0)
	tail = binary.BigEndian.AppendUint32(tail, uint32(len(values)-1))
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))
	tail = binary.BigEndian.AppendUint64(tail, ^uint64(0)) // producer ID -1
	tail = binary.BigEndian.AppendUint16(tail, 0xffff)     // epoch -1
	tail = binary.BigEndian.AppendUint32(tail, 0xffffffff) // sequence -1
	tail = binary.BigEndian.AppendUint32(tail, uint32(len(values)))
	tail = append(tail, recs...)
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(tail))) // length: epoch, magic, crc, tail
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)              // leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(tail, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, tail...)
}

func (r *runner) sasl(ctx context.Context, user, pass, wrong string, n int) error {
	t := r.topics[0]
	cl, err := r.client("producer-sasl", kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: t, Value: value(t, i, "none")})
	}
	for _, pr := range cl.ProduceSync(ctx, recs...) {
		if pr.Err != nil {
			r.fail(pr.Err)
		} else {
			r.rep.RecordsProduced++
		}
	}
	cl.Close()
	r.rep.Produced = append(r.rep.Produced, produced{Topic: t, Records: r.rep.RecordsProduced, Acks: "all", Codec: "none"})
	if r.rep.RecordsProduced != n {
		return fmt.Errorf("%d of %d records produced", r.rep.RecordsProduced, n)
	}

	// The wrong password: one request on the seed broker, not retried.
	bad, err := r.client("client-wrong-password", kgo.SASL(plain.Auth{User: user, Pass: wrong}.AsMechanism()))
	if err != nil {
		return err
	}
	defer bad.Close()
	if _, err := bad.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest()); err == nil {
		return errors.New("a wrong password was accepted")
	} else {
		r.fail(err)
	}
	return nil
}

func (r *runner) bulk(ctx context.Context, n int) error {
	t := r.topics[0]
	// Batches of at most 16 KiB and fetches of at most 64 KiB: many
	// requests, as from a busy service, not a few of megabytes.
	cl, err := r.client("bulk-producer", kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(16<<10))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	val := make([]byte, 100)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: t, Key: fmt.Appendf(nil, "key-%d", i%1000), Value: val}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.fail(err)
			} else {
				r.rep.RecordsProduced++
			}
		})
	}
	wg.Wait()
	cl.Close()
	r.rep.Produced = append(r.rep.Produced, produced{Topic: t, Records: r.rep.RecordsProduced, Acks: "leader", Codec: "none"})
	if r.rep.RecordsProduced != n {
		return fmt.Errorf("%d of %d records produced", r.rep.RecordsProduced, n)
	}
	cons, err := r.client("bulk-consumer", kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxBytes(64<<10), kgo.FetchMaxPartitionBytes(32<<10))
	if err != nil {
		return err
	}
	defer cons.Close()
	for r.rep.RecordsConsumed < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("consumed %d of %d records: %w", r.rep.RecordsConsumed, n, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { r.fail(err) })
		fs.EachRecord(func(rec *kgo.Record) {
			r.rep.RecordsConsumed++
			r.rep.Consumed[rec.Topic]++
		})
	}
	return nil
}
