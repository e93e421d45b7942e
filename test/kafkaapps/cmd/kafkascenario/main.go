// Command kafkascenario runs one pod's Kafka client for the eval scenario
// evals/scenarios/billing-consumer-rebalance: a franz-go (kgo) producer or a
// consumer in a group, every connection leaving from the pod's own address
// (-pod: a net.Dialer with LocalAddr set), until -records records are
// produced or, for a consumer, until SIGTERM or SIGINT. It prints a JSON
// report on stdout at the end:
//
//	{"role", "pod", "client_id", "records_produced", "produce_errors",
//	 "records_consumed", "sessions" (consumer clients opened), "errors"
//	 {"KAFKA_ERROR": n} (errors kgo handed to the application),
//	 "requests" {"Produce": n, ...} (written, counted by a kgo.HookBrokerWrite
//	 hook), "connections" (kgo.HookBrokerConnect)}
//
// Roles (-role):
//
//	producer  -records records to -topic, one kgo.ProduceSync at a time every
//	          -every (so one record per Produce request), acks=all,
//	          idempotent (kgo's defaults); a record that fails is an error
//	          (exit 1)
//	consumer  a member of group -group reading -topic (from the start when
//	          the group has no offset), kgo's autocommit (every 5 s, and on
//	          revoke and close), kgo's default balancer (cooperative-sticky). With
//	          -restart-every D (the billing 2.0 bug) the consumer closes its
//	          client (a LeaveGroup) and opens a new one (a fresh JoinGroup)
//	          every D, the first time after -restart-first: every restart
//	          makes the whole group rebalance. On SIGTERM it closes its
//	          client (committing and leaving the group) and exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wirescope/wirescope/test/kafkaapps/internal/hooks"
)

type report struct {
	Role            string         `json:"role"`
	Pod             string         `json:"pod"`
	ClientID        string         `json:"client_id"`
	RecordsProduced int            `json:"records_produced"`
	ProduceErrors   int            `json:"produce_errors"`
	RecordsConsumed int            `json:"records_consumed"`
	Sessions        int            `json:"sessions"`
	Errors          map[string]int `json:"errors"`
	OtherErrors     []string       `json:"other_errors"`
	Requests        map[string]int `json:"requests"`
	Connections     int            `json:"connections"`
}

func main() {
	brokers := flag.String("brokers", "127.0.8.10:9092", "seed broker")
	pod := flag.String("pod", "", "the pod's address: every connection leaves from it (required)")
	role := flag.String("role", "", "producer or consumer")
	clientID := flag.String("client-id", "", "Kafka client ID (default: the role)")
	topic := flag.String("topic", "orders", "topic")
	group := flag.String("group", "billing", "consumer group")
	records := flag.Int("records", 100, "records to produce (producer)")
	every := flag.Duration("every", 250*time.Millisecond, "time between records (producer)")
	restartEvery := flag.Duration("restart-every", 0, "close and reopen the consumer's client this often (0: never)")
	restartFirst := flag.Duration("restart-first", 0, "the first restart after this long (default: -restart-every)")
	rebalanceTimeout := flag.Duration("rebalance-timeout", 0, "the consumer's rebalance timeout (kgo.RebalanceTimeout; 0: kgo's default, 60 s)")
	flag.Parse()
	ip := net.ParseIP(*pod)
	if ip == nil {
		log.Fatalf("-pod %q: not an IP address", *pod)
	}
	if *clientID == "" {
		*clientID = *role
	}
	h := hooks.New()
	rep := &report{Role: *role, Pod: *pod, ClientID: *clientID, Errors: map[string]int{}, OtherErrors: []string{}}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	base := []kgo.Opt{
		kgo.SeedBrokers(*brokers),
		kgo.ClientID(*clientID),
		kgo.WithHooks(h),
		kgo.Dialer(dialer.DialContext),
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch *role {
	case "producer":
		err = produce(ctx, base, rep, *topic, *records, *every)
	case "consumer":
		first := *restartFirst
		if first == 0 {
			first = *restartEvery
		}
		if *rebalanceTimeout > 0 {
			base = append(base, kgo.RebalanceTimeout(*rebalanceTimeout))
		}
		err = consume(ctx, base, rep, *topic, *group, *restartEvery, first)
	default:
		log.Fatalf("-role %q: want producer or consumer", *role)
	}
	rep.Requests, rep.Connections = h.Snapshot()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if e := enc.Encode(rep); e != nil {
		log.Fatal(e)
	}
	if err != nil {
		log.Fatalf("%s %s: %v", *role, *pod, err)
	}
}

func (r *report) fail(err error) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		r.Errors[ke.Message]++
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	r.OtherErrors = append(r.OtherErrors, err.Error())
}

// produce sends n records, one at a time, every interval (a ticker, so the
// pace does not drift with the answers' latency). SIGTERM is not awaited: the
// producer stops after its records.
func produce(_ context.Context, base []kgo.Opt, rep *report, topic string, n int, every time.Duration) error {
	cl, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*every+30*time.Second)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		value := fmt.Sprintf(`{"order":"o-%s-%05d","amount_cents":%d,"currency":"EUR"}`, rep.Pod, i, 500+(i*389)%50000)
		rec := &kgo.Record{Key: []byte(fmt.Sprintf("o-%05d", i)), Value: []byte(value)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			rep.ProduceErrors++
			rep.fail(err)
		} else {
			rep.RecordsProduced++
		}
		if i < n-1 {
			<-tick.C
		}
	}
	if rep.ProduceErrors > 0 {
		return fmt.Errorf("%d of %d records failed", rep.ProduceErrors, n)
	}
	return nil
}

// consume runs consumer sessions until ctx ends: one session without
// restartEvery, else a new client every restartEvery (the first after first).
func consume(ctx context.Context, base []kgo.Opt, rep *report, topic, group string, restartEvery, first time.Duration) error {
	opts := append(base,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	wait := first
	for {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		rep.Sessions++
		sctx := ctx
		var cancel context.CancelFunc = func() {}
		if restartEvery > 0 {
			sctx, cancel = context.WithTimeout(ctx, wait)
			wait = restartEvery
		}
		for sctx.Err() == nil {
			fs := cl.PollFetches(sctx)
			fs.EachError(func(_ string, _ int32, err error) { rep.fail(err) })
			fs.EachRecord(func(*kgo.Record) { rep.RecordsConsumed++ })
		}
		cancel()
		// Close commits what was consumed (autocommit on revoke) and
		// leaves the group.
		cl.Close()
		if ctx.Err() != nil {
			return nil
		}
	}
}
