package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/amqp"
)

// rawAMQP runs the workload through amqp091-go alone, on the broker objects
// the amqp adapter declares for the URL's topology, for the raw side's own
// topic: in exchange mode a durable fanout exchange named after the topic
// and, per subscription, a durable queue bound to it (a group's
// "<topic>.<group>" or an expiring broadcast queue); in work-queue mode the
// topic's durable queue. They are the raw run's own and deleted at the end. Messages are persistent and published mandatory
// on one channel in confirm mode shared by every publisher, each waiting
// for its own confirms; the body is the bare bytes, without busline's
// envelope. The subscriber acks each message after its handler, with the
// adapter's prefetch (1 for concurrency 1, else 4 x concurrency).
type rawAMQP struct {
	cfg      amqp.Config
	conn     *amqp091.Connection
	pubCh    *amqp091.Channel
	subCh    *amqp091.Channel
	exchange string // exchange to delete on close
	queue    string // queue to delete on close
}

func openRawAMQP(ctx context.Context, rawURL string) (benchClient, error) {
	cfg, err := amqp.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// The adapter's documented defaults, for what the URL leaves unset.
	cfg.Topology = cmp.Or(cfg.Topology, amqp.TopologyExchange)
	cfg.QueueType = cmp.Or(cfg.QueueType, amqp.QueueClassic)
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, 10*time.Second)
	cfg.BroadcastExpires = cmp.Or(cfg.BroadcastExpires, time.Minute)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, 30*time.Second)
	if cfg.TLSCAFile != "" || cfg.TLSCertFile != "" || cfg.TLSServerName != "" {
		return nil, usagef("bench: -raw: the raw amqp091-go client here takes no tls_* parameters")
	}
	if len(cfg.Addrs) > 0 {
		return nil, usagef("bench: -raw: the raw amqp091-go client connects to one node; drop addrs= from the URL")
	}
	dial := cfg.DialTimeout
	if d, ok := ctx.Deadline(); ok {
		dial = min(dial, time.Until(d))
	}
	conn, err := amqp091.DialConfig(cfg.URL, amqp091.Config{Dial: amqp091.DefaultDial(dial), Heartbeat: cfg.Heartbeat})
	if err != nil {
		return nil, fmt.Errorf("bench: raw amqp091-go: dial %s: %w", bus.RedactURL(cfg.URL), err)
	}
	r := &rawAMQP{cfg: cfg, conn: conn}
	if r.pubCh, err = conn.Channel(); err == nil {
		err = r.pubCh.Confirm(false)
	}
	if err == nil {
		r.subCh, err = conn.Channel()
	}
	if err != nil {
		r.close()
		return nil, fmt.Errorf("bench: raw amqp091-go: open channels: %w", err)
	}
	return r, nil
}

func (r *rawAMQP) queueArgs() amqp091.Table {
	if r.cfg.QueueType == amqp.QueueQuorum {
		return amqp091.Table{"x-queue-type": amqp.QueueQuorum}
	}
	return nil
}

// destination mirrors the adapter: an exchange per topic, or the default
// exchange with the topic's queue as routing key in work-queue mode.
func (r *rawAMQP) destination(topic string) (exchange, key string) {
	if r.cfg.Topology == amqp.TopologyWorkQueue {
		return "", topic
	}
	return topic, ""
}

// declare declares the topic and the queue w's subscription reads, and
// returns the queue's name.
func (r *rawAMQP) declare(w *workload) (string, error) {
	ch := r.subCh
	if r.cfg.Topology == amqp.TopologyWorkQueue {
		if w.group == "" { // busline has refused this already, in its own words
			return "", usagef("bench: topology=workqueue: pass -group TOPIC (the topic's queue is its only group)")
		}
		_, err := ch.QueueDeclare(w.topic, true, false, false, false, r.queueArgs())
		r.queue = w.topic
		return w.topic, err
	}
	if err := ch.ExchangeDeclare(w.topic, amqp091.ExchangeFanout, true, false, false, false, nil); err != nil {
		return "", err
	}
	r.exchange = w.topic
	var q string
	if w.group != "" {
		q = w.topic + "." + w.group
		args := r.queueArgs()
		if args == nil {
			args = amqp091.Table{}
		}
		args["x-expires"] = int32(r.cfg.BroadcastExpires.Milliseconds()) // should close not delete it
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return "", err
		}
		// Left over from an earlier run that failed: not this run's.
		if _, err := ch.QueuePurge(q, false); err != nil {
			return "", err
		}
		r.queue = q // else it would collect the topic's messages for good
	} else {
		q = w.topic + ".raw." + uuid.NewString()[:13]
		args := amqp091.Table{"x-expires": int32(r.cfg.BroadcastExpires.Milliseconds()), "x-queue-type": amqp.QueueClassic}
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return "", err
		}
		r.queue = q
	}
	return q, ch.QueueBind(q, "", w.topic, false, nil)
}

func (r *rawAMQP) subscribe(ctx context.Context, w *workload, h func([]byte)) (<-chan error, error) {
	// The declarations below wait for the broker's answer without a
	// context: if ctx ends first, closing the connection ends the wait.
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	q, err := r.declare(w)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, fmt.Errorf("bench: raw amqp091-go: declare: %w", err)
	}
	prefetch := 1
	if w.concurrency > 1 {
		prefetch = min(4*w.concurrency, 65535)
	}
	if err := r.subCh.Qos(prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("bench: raw amqp091-go: prefetch: %w", err)
	}
	closed := r.subCh.NotifyClose(make(chan *amqp091.Error, 1))
	deliveries, err := r.subCh.ConsumeWithContext(ctx, q, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: raw amqp091-go: consume: %w", err)
	}
	errc := make(chan error, 1)
	for range w.concurrency {
		// A worker ends when the deliveries channel closes: ctx ended
		// (the consumer is cancelled) or the channel was lost.
		go func() {
			for d := range deliveries {
				h(d.Body)
				if err := d.Ack(false); err != nil {
					select {
					case errc <- fmt.Errorf("raw amqp091-go: ack: %w", err):
					default:
					}
					return
				}
			}
		}()
	}
	go func() {
		select {
		case e := <-closed:
			if e != nil {
				select {
				case errc <- fmt.Errorf("raw amqp091-go: channel closed: %w", e):
				default:
				}
			}
		case <-ctx.Done():
		}
	}()
	return errc, nil
}

func (r *rawAMQP) publish(ctx context.Context, topic string, _ int, bodies [][]byte) error {
	ex, key := r.destination(topic)
	confirms := make([]*amqp091.DeferredConfirmation, len(bodies))
	for i, b := range bodies {
		dc, err := r.pubCh.PublishWithDeferredConfirmWithContext(ctx, ex, key, true, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: b})
		if err != nil {
			return fmt.Errorf("raw amqp091-go: %w", err)
		}
		confirms[i] = dc
	}
	for _, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("raw amqp091-go: confirm: %w", err)
		}
		if !ok {
			return errors.New("raw amqp091-go: the broker refused a message (nack)")
		}
	}
	return nil
}

// close deletes the raw run's queue and exchange and closes the
// connection, waiting at most 5s for the deletions (an exchange-mode queue
// also expires on its own once unused for broadcast_expires) and 5s for
// the connection to close.
func (r *rawAMQP) close() error {
	if (r.queue != "" || r.exchange != "") && r.subCh != nil {
		done := make(chan struct{})
		go func() { // ends at the latest when the connection closes below
			defer close(done)
			if r.queue != "" {
				_, _ = r.subCh.QueueDelete(r.queue, false, false, false)
			}
			if r.exchange != "" {
				_ = r.subCh.ExchangeDelete(r.exchange, false, false)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	return r.conn.CloseDeadline(time.Now().Add(5 * time.Second))
}
