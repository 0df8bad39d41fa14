package amqp

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
)

// topology names and declares the broker objects behind topics and
// groups. Every declaration is idempotent, so that it can be repeated after
// each reconnect.
type topology struct {
	mode      string
	queueType string
}

// destination returns the exchange and routing key a topic is published to.
func (t topology) destination(topic string) (exchange, key string) {
	if t.mode == TopologyWorkQueue {
		return "", topic
	}
	return topic, ""
}

// groupQueue names the durable queue of a group: the topic itself when the
// group is named after it (the work-queue case, and how a topic's dead
// letters are kept), else "<topic>.<group>".
func groupQueue(topic, group string) string {
	if group == topic {
		return topic
	}
	return topic + "." + group
}

func (t topology) queueArgs() amqp091.Table {
	if t.queueType == QueueQuorum {
		return amqp091.Table{"x-queue-type": QueueQuorum}
	}
	return nil
}

// declareTopic makes sure a topic can be published to: its exchange in
// exchange mode, its durable queue in work-queue mode.
func (t topology) declareTopic(ch *amqp091.Channel, topic string) error {
	if t.mode == TopologyWorkQueue {
		if _, err := ch.QueueDeclare(topic, true, false, false, false, t.queueArgs()); err != nil {
			return brokerError(fmt.Sprintf("declare queue %q", topic), err)
		}
		return nil
	}
	if err := ch.ExchangeDeclare(topic, amqp091.ExchangeFanout, true, false, false, false, nil); err != nil {
		return brokerError(fmt.Sprintf("declare exchange %q", topic), err)
	}
	return nil
}

// declareDurable declares the durable queue of a group on topic and binds
// it, and returns its name.
func (t topology) declareDurable(ch *amqp091.Channel, topic, group string) (string, error) {
	if err := t.declareTopic(ch, topic); err != nil {
		return "", err
	}
	if t.mode == TopologyWorkQueue {
		return topic, nil
	}
	q := groupQueue(topic, group)
	if _, err := ch.QueueDeclare(q, true, false, false, false, t.queueArgs()); err != nil {
		return "", brokerError(fmt.Sprintf("declare queue %q", q), err)
	}
	if err := ch.QueueBind(q, "", topic, false, nil); err != nil {
		return "", brokerError(fmt.Sprintf("bind queue %q to exchange %q", q, topic), err)
	}
	return q, nil
}

// declareSubscription declares what one Subscribe reads from and returns
// the queue name: a group's durable queue, or in exchange mode a
// broadcast subscriber's own queue, named broadcast by the caller. That
// queue outlives a lost connection, so that what is published while the
// subscriber reconnects waits for it; Subscribe deletes it when it ends,
// and the broker does once it has had no consumer for expires (a process
// that died).
//
// The broadcast queue is durable and expiring rather than transient or
// exclusive: RabbitMQ 4.3 refuses transient non-exclusive queues by
// default (the deprecated feature transient_nonexcl_queues), and an
// exclusive queue is deleted with its connection, which would lose what
// is published while the subscriber reconnects. It is a classic queue
// whatever the vhost's default queue type: it has one consumer and lives
// only as long as its subscription.
func (t topology) declareSubscription(ch *amqp091.Channel, topic string, sc bus.SubscribeConfig, broadcast string, expires time.Duration) (string, error) {
	if sc.Group != "" {
		return t.declareDurable(ch, topic, sc.Group)
	}
	if err := t.declareTopic(ch, topic); err != nil {
		return "", err
	}
	args := amqp091.Table{"x-expires": int32(expires.Milliseconds()), "x-queue-type": QueueClassic}
	if _, err := ch.QueueDeclare(broadcast, true, false, false, false, args); err != nil {
		return "", brokerError(fmt.Sprintf("declare broadcast queue %q", broadcast), err)
	}
	if err := ch.QueueBind(broadcast, "", topic, false, nil); err != nil {
		return "", brokerError(fmt.Sprintf("bind broadcast queue %q to exchange %q", broadcast, topic), err)
	}
	return broadcast, nil
}

// broadcastQueue names a new broadcast subscription's queue.
func broadcastQueue(topic string) string {
	return topic + ".broadcast." + uuid.NewString()[:13]
}

// checkGroup applies the work-queue rule: the queue is the group.
func (t topology) checkGroup(topic, group string) error {
	if t.mode != TopologyWorkQueue {
		return nil
	}
	if group == "" {
		return fmt.Errorf("amqp: %w: topology=workqueue has no broadcast; pass bus.Group(%q) to share the work queue %q", bus.ErrUnsupported, topic, topic)
	}
	if group != topic {
		return fmt.Errorf("amqp: %w: topology=workqueue: the queue %q is the topic's only group, so the group must be %q, not %q", bus.ErrInvalid, topic, topic, group)
	}
	return nil
}
