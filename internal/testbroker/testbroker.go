// Package testbroker gives tests the Kafka cluster they run against: the
// one $BUS_KAFKA_BROKERS names, or else an embedded 3-broker kfake cluster
// on loopback ports, started once per test process.
package testbroker

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EnvKafka names a real Kafka cluster (comma-separated host:port) for the
// tests to use instead of the embedded one.
const EnvKafka = "BUS_KAFKA_BROKERS"

var kafka struct {
	once  sync.Once
	addrs []string
	err   error
}

// KafkaAddrs returns the bootstrap addresses of the test Kafka cluster.
// The embedded cluster lives until the test process exits.
func KafkaAddrs(t testing.TB) []string {
	t.Helper()
	kafka.once.Do(func() {
		if env := os.Getenv(EnvKafka); env != "" {
			kafka.addrs = strings.Split(env, ",")
			return
		}
		var c *kfake.Cluster
		c, kafka.err = kfake.NewCluster(kfake.NumBrokers(3))
		if kafka.err == nil {
			kafka.addrs = c.ListenAddrs()
		}
	})
	if kafka.err != nil {
		t.Fatalf("testbroker: start kfake: %v", kafka.err)
	}
	return kafka.addrs
}

// KafkaURL returns a kafka:// URL for the test cluster with the given
// query (without '?').
func KafkaURL(t testing.TB, query string) string {
	u := "kafka://" + strings.Join(KafkaAddrs(t), ",") + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}
