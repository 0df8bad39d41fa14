package amqp

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/busline/bus"
	"github.com/busline/bus/driver"
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
func (t topology) declareSubscription(ch *amqp091.Channel, topic string, sc driver.SubscribeConfig, broadcast string, expires time.Duration) (string, error) {
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
	return topic + broadcastPart + "." + uuid.NewString()[:13]
}

// checkGroup checks the names a subscription's queues get. In work-queue
// mode the queue is the group, so the group must be the topic.
//
// In exchange mode every queue name must belong to one subscription kind
// only, so that no subscription reads another one's queue. The queues are:
//
//   - a group's queue "<topic>.<group>": the group has no '.', is not
//     "dlq" and is not named like a broadcast id on a topic ending in
//     ".broadcast", so the part after the last '.' is the group and the
//     rest is the topic;
//   - a queue named after a topic (bus.Group(topic), and every dead letter
//     topic's queue): the name has no '.' or ends in ".dlq", which no
//     group's queue does;
//   - a broadcast queue "<topic>.broadcast.<id>", whose last part no group
//     may take on that topic.
//
// Plain names keep the queue names earlier versions declared
// ("orders.billing", "orders", "orders.dlq").
func (t topology) checkGroup(topic string, sc driver.SubscribeConfig) error {
	group := sc.Group
	if t.mode == TopologyWorkQueue {
		if group == "" {
			return fmt.Errorf("amqp: %w: topology=workqueue has no broadcast; pass bus.Group(%q) to share the work queue %q", bus.ErrUnsupported, topic, topic)
		}
		if group != topic {
			return fmt.Errorf("amqp: %w: topology=workqueue: the queue %q is the topic's only group, so the group must be %q, not %q", bus.ErrInvalid, topic, topic, group)
		}
		return nil
	}
	if ot, og, clash := topicQueueClash(sc.DeadLetter); clash {
		return fmt.Errorf("amqp: %w: the dead letter topic %q keeps its messages in the queue %q, which is also the queue of group %q of topic %q; use a dead letter topic without dots or ending in %q",
			bus.ErrInvalid, sc.DeadLetter, sc.DeadLetter, og, ot, bus.DeadLetterSuffix)
	}
	switch {
	case group == "":
		return nil
	case group == topic:
		if ot, og, clash := topicQueueClash(topic); clash {
			return fmt.Errorf("amqp: %w: bus.Group(%q) reads the queue %q, which is also the queue of group %q of topic %q; use a group name without dots",
				bus.ErrInvalid, group, topic, og, ot)
		}
	case strings.Contains(group, "."):
		return fmt.Errorf("amqp: %w: group %q contains \".\": its queue %q could also be another topic's group queue (topic %q, group %q); use a group name without dots",
			bus.ErrInvalid, group, groupQueue(topic, group), topic+"."+group[:strings.LastIndex(group, ".")], group[strings.LastIndex(group, ".")+1:])
	case group == deadLetterPart || groupQueue(topic, group) == sc.DeadLetter:
		return fmt.Errorf("amqp: %w: group %q would read the queue %q, which is the dead letter queue of topic %q; read dead letters with Subscribe(%q, ..., bus.Group(%q))",
			bus.ErrInvalid, group, groupQueue(topic, group), topic, topic+bus.DeadLetterSuffix, topic+bus.DeadLetterSuffix)
	case strings.HasSuffix(topic, broadcastPart) && broadcastID.MatchString(group):
		return fmt.Errorf("amqp: %w: group %q of topic %q would read a queue named like a broadcast subscriber's queue of topic %q; choose another group name",
			bus.ErrInvalid, group, topic, strings.TrimSuffix(topic, broadcastPart))
	}
	return nil
}

// deadLetterPart is the last part of a default dead letter queue's name.
var deadLetterPart = strings.TrimPrefix(bus.DeadLetterSuffix, ".")

// broadcastPart comes between a topic and the id in a broadcast queue's
// name; broadcastID matches the ids broadcastQueue makes.
const broadcastPart = ".broadcast"

var broadcastID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}$`)

// topicQueueClash reports whether a queue named after topic could also be
// a group's queue, and whose: the topic before the last '.' and the group
// after it.
func topicQueueClash(topic string) (otherTopic, otherGroup string, clash bool) {
	if !strings.Contains(topic, ".") || strings.HasSuffix(topic, bus.DeadLetterSuffix) {
		return "", "", false
	}
	i := strings.LastIndex(topic, ".")
	return topic[:i], topic[i+1:], true
}
