// Command amqpclient runs one AMQP 0-9-1 scenario against a broker with
// amqp091-go and prints what it did as JSON.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// report is what a scenario did: the methods the client sent (by
// class.method), the messages published and delivered, and the reply
// codes of the closes the broker sent.
type report struct {
	Methods    map[string]int `json:"methods"`
	Publishes  int            `json:"publishes"`
	Deliveries int            `json:"deliveries"`
	CloseCodes []int          `json:"close_codes"`
	// ClientError is the code of the error the client reported when it
	// is not a close the broker sent: RabbitMQ 3.10 drops the connection
	// after a wrong password, and amqp091-go reports 403.
	ClientError int `json:"client_error,omitempty"`
}

func main() {
	addr := flag.String("addr", "", "amqp://user:pass@host:port/")
	scenario := flag.String("scenario", "", "publish-confirm, consume, get-tx, declare-twice, missing-exchange, bad-password")
	flag.Parse()
	r := &report{Methods: map[string]int{}, CloseCodes: []int{}}
	if err := run(*addr, *scenario, r); err != nil {
		fmt.Fprintln(os.Stderr, "amqpclient:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func (r *report) sent(names ...string) {
	for _, n := range names {
		r.Methods[n]++
	}
}

// dial opens a connection and a channel: the handshake's methods the
// client sends (start-ok, tune-ok, open) are counted with the server's
// start and tune as the calls they answer.
func dial(addr string, r *report) (*amqp.Connection, *amqp.Channel, error) {
	conn, err := amqp.Dial(addr)
	if err != nil {
		return nil, nil, err
	}
	r.sent("connection.open")
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	r.sent("channel.open")
	return conn, ch, nil
}

func closeAll(conn *amqp.Connection, ch *amqp.Channel, r *report) error {
	if ch != nil {
		if err := ch.Close(); err != nil {
			return err
		}
		r.sent("channel.close")
	}
	if err := conn.Close(); err != nil {
		return err
	}
	r.sent("connection.close")
	return nil
}

func props(i int) amqp.Publishing {
	return amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent,
		Headers: amqp.Table{"trace": "t-1", "attempt": int32(i)}, CorrelationId: fmt.Sprintf("corr-%d", i),
		ReplyTo: "replies", MessageId: fmt.Sprintf("msg-%d", i), Body: []byte(fmt.Sprintf(`{"order":%d}`, i))}
}

func run(addr, scenario string, r *report) error {
	switch scenario {
	case "bad-password":
		_, err := amqp.Dial(addr)
		var e *amqp.Error
		if !errors.As(err, &e) {
			return fmt.Errorf("want an amqp error, got %v", err)
		}
		r.ClientError = e.Code
		return nil
	}
	conn, ch, err := dial(addr, r)
	if err != nil {
		return err
	}
	switch scenario {
	case "publish-confirm":
		if err := ch.ExchangeDeclare("orders", "topic", false, true, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare("orders.eu", false, true, false, false, amqp.Table{"x-max-length": int32(100)}); err != nil {
			return err
		}
		if err := ch.QueueBind("orders.eu", "new.*", "orders", false, nil); err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		r.sent("exchange.declare", "queue.declare", "queue.bind", "confirm.select")
		for i := range 5 {
			dc, err := ch.PublishWithDeferredConfirm("orders", "new.eu", false, false, props(i))
			if err != nil {
				return err
			}
			r.sent("basic.publish")
			r.Publishes++
			if i == 4 {
				if !dc.Wait() {
					return errors.New("publish not confirmed")
				}
			}
		}
		if _, err := ch.QueueDelete("orders.eu", false, false, false); err != nil {
			return err
		}
		r.sent("queue.delete")
	case "consume":
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		r.sent("queue.declare")
		for i := range 4 {
			if err := ch.Publish("", q.Name, false, false, props(i)); err != nil {
				return err
			}
			r.sent("basic.publish")
			r.Publishes++
		}
		if err := ch.Qos(2, 0, false); err != nil {
			return err
		}
		r.sent("basic.qos")
		msgs, err := ch.Consume(q.Name, "wsconsumer", false, false, false, false, nil)
		if err != nil {
			return err
		}
		r.sent("basic.consume")
		for i := range 4 {
			select {
			case m := <-msgs:
				r.Deliveries++
				if i == 3 {
					err = m.Nack(false, false)
					r.sent("basic.nack")
				} else {
					err = m.Ack(false)
					r.sent("basic.ack")
				}
				if err != nil {
					return err
				}
			case <-time.After(10 * time.Second):
				return errors.New("no delivery")
			}
		}
		if err := ch.Cancel("wsconsumer", false); err != nil {
			return err
		}
		r.sent("basic.cancel")
	case "get-tx":
		q, err := ch.QueueDeclare("gets", false, true, false, false, nil)
		if err != nil {
			return err
		}
		r.sent("queue.declare")
		if err := ch.Tx(); err != nil {
			return err
		}
		r.sent("tx.select")
		if err := ch.Publish("", q.Name, false, false, props(1)); err != nil {
			return err
		}
		r.sent("basic.publish")
		r.Publishes++
		if err := ch.TxCommit(); err != nil {
			return err
		}
		r.sent("tx.commit")
		m, ok, err := ch.Get(q.Name, true)
		if err != nil || !ok {
			return fmt.Errorf("get: %v %v", ok, err)
		}
		_ = m
		r.Deliveries++
		_, ok, err = ch.Get(q.Name, true)
		if err != nil || ok {
			return fmt.Errorf("second get: %v %v", ok, err)
		}
		r.sent("basic.get", "basic.get")
		if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
			return err
		}
		r.sent("queue.delete")
	case "declare-twice":
		if _, err := ch.QueueDeclare("dup", false, true, false, false, nil); err != nil {
			return err
		}
		r.sent("queue.declare")
		_, err := ch.QueueDeclare("dup", true, false, false, false, nil)
		r.sent("queue.declare")
		var e *amqp.Error
		if !errors.As(err, &e) {
			return fmt.Errorf("want a channel error, got %v", err)
		}
		r.CloseCodes = append(r.CloseCodes, e.Code)
		ch = nil
	case "missing-exchange":
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		if err := ch.Publish("no-such-exchange", "rk", false, false, props(1)); err != nil {
			return err
		}
		r.sent("basic.publish")
		r.Publishes++
		select {
		case e := <-closed:
			if e == nil {
				return errors.New("channel closed without an error")
			}
			r.CloseCodes = append(r.CloseCodes, e.Code)
		case <-time.After(10 * time.Second):
			return errors.New("the channel was not closed")
		}
		ch = nil
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	return closeAll(conn, ch, r)
}
