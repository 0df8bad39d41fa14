package redispubsub_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/bustest"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/redispubsub"
)

// harness hooks the adapter, configured by cfg, into the conformance suite.
// Dead letters land in Redis lists, which the suite reads with BLPOP.
func harness(cfg redispubsub.Config, admin goredis.UniversalClient) bustest.Harness {
	return bustest.Harness{
		NewPublisher:  func(t *testing.T) bus.Publisher { return newPublisher(t, cfg) },
		NewSubscriber: func(t *testing.T) bus.Subscriber { return newSubscriber(t, cfg) },
		NewTopic: func(t *testing.T) string {
			topic := uniqueTopic(t)
			t.Cleanup(func() { admin.Del(context.Background(), topic+bus.DeadLetterSuffix) })
			return topic
		},
		ReadDeadLetters: func(ctx context.Context, t *testing.T, topic string, n int) ([]*bus.Message, error) {
			var out []*bus.Message
			for len(out) < n {
				wait := time.Second
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
					wait = time.Until(dl)
				}
				if err := ctx.Err(); err != nil {
					return out, err
				}
				kv, err := admin.BLPop(ctx, wait, topic).Result()
				if err == goredis.Nil {
					continue
				}
				if err != nil {
					return out, err
				}
				m := &bus.Message{}
				if err := ce.UnmarshalStructured([]byte(kv[1]), m); err != nil {
					return out, err
				}
				out = append(out, m)
			}
			return out, nil
		},
		// Bounds every wait; also what each check's cleanup may wait.
		Timeout: 15 * time.Second,
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	admin := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = admin.Close() })
	bustest.Run(t, harness(standaloneConfig(), admin))
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	cfg := clusterConfig(t)
	admin := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: clusterAddrs()})
	t.Cleanup(func() { _ = admin.Close() })
	h := harness(cfg, admin)
	h.LoadMessages = 4000
	bustest.Run(t, h)
}
