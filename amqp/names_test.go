package amqp_test

import (
	"strings"
	"testing"
)

// TestBroadcastQueueIsDurable: a broadcast subscriber's queue is durable,
// not exclusive, not auto-delete, and expires (x-expires): RabbitMQ 4.3
// refuses transient non-exclusive queues by default, and an exclusive one
// would go with the connection and lose what is published during a
// reconnect. (TestBroadcastKeepsMessagesAcrossReconnect and
// TestBroadcastQueueExpiresWithoutItsSubscriber show the rest.)
func TestBroadcastQueueIsDurable(t *testing.T) {
	t.Parallel()
	topic := uniqueTopic(t)
	sub := newSubscriber(t, mustConfig(t, "broadcast_expires=7s"))
	subscribe(t, sub, topic, newCollector().handle)
	var line string
	for _, l := range strings.Split(rabbitmqctlOut(t, "list_queues", "name", "durable", "auto_delete", "exclusive", "arguments"), "\n") {
		if strings.HasPrefix(l, topic+".broadcast.") {
			line = l
		}
	}
	f := strings.Fields(line)
	if len(f) < 4 {
		t.Fatalf("no broadcast queue listed for %s", topic)
	}
	if f[1] != "true" || f[2] != "false" || f[3] != "false" || !strings.Contains(line, `{"x-expires",7000}`) {
		t.Fatalf("broadcast queue is not durable, shared and expiring (name durable auto_delete exclusive arguments):\n%s", line)
	}
}
