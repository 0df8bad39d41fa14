package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/redispubsub"
)

// The test cluster: three masters on loopback, started from the Debian
// redis-server binary on first use and killed by TestMain.
var clusterPorts = []int{7101, 7102, 7103}

var cluster struct {
	once  sync.Once
	err   error
	dir   string
	procs []*exec.Cmd
}

func clusterAddrs() []string {
	a := make([]string, len(clusterPorts))
	for i, p := range clusterPorts {
		a[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return a
}

// clusterConfig returns a Config for the test cluster, starting it if
// needed. A missing redis-server binary fails the test.
func clusterConfig(t testing.TB) redispubsub.Config {
	t.Helper()
	cluster.once.Do(func() { cluster.err = startCluster() })
	if cluster.err != nil {
		t.Fatalf("test cluster: %v", cluster.err)
	}
	a := clusterAddrs()
	return redispubsub.Config{Cluster: true, Addr: a[0], Addrs: a[1:]}
}

func startCluster() error {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server binary not found (apt-get install redis-server): %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return fmt.Errorf("redis-cli binary not found: %w", err)
	}
	for _, p := range clusterPorts {
		for _, port := range []int{p, p + 10000} { // client and cluster bus ports
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				return fmt.Errorf("port %d is taken (a leftover test cluster?): %w", port, err)
			}
			_ = l.Close()
		}
	}
	cluster.dir, err = os.MkdirTemp("", "redispubsub-cluster-")
	if err != nil {
		return err
	}
	for _, p := range clusterPorts {
		dir := filepath.Join(cluster.dir, strconv.Itoa(p))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ncluster-enabled yes\ncluster-config-file nodes.conf\n"+
			"cluster-node-timeout 5000\nsave \"\"\nappendonly no\ndaemonize no\ndir %s\nlogfile %s\n",
			p, dir, filepath.Join(dir, "redis.log"))
		cf := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(server, cf)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server on %d: %w", p, err)
		}
		cluster.procs = append(cluster.procs, cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range clusterAddrs() {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		err := pollUntil(ctx, func() bool { return c.Ping(ctx).Err() == nil })
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("redis-server %s did not come up: %w", a, err)
		}
	}
	args := append([]string{"--cluster", "create"}, clusterAddrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, a := range clusterAddrs() {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		err := pollUntil(ctx, func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s never reported cluster_state:ok: %w", a, err)
		}
	}
	return nil
}

// pollUntil checks cond every 50ms until it holds or ctx ends.
func pollUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func stopCluster() {
	for _, cmd := range cluster.procs {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	if cluster.dir != "" {
		_ = os.RemoveAll(cluster.dir)
	}
}

func TestClusterShardedReceiverCount(t *testing.T) {
	cfg := clusterConfig(t)
	pub := newPublisher(t, cfg)
	if !pub.Capabilities().ReceiverCount || pub.Capabilities().Patterns {
		t.Fatalf("sharded cluster capabilities: %+v", pub.Capabilities())
	}
	// Topics spread over the slots of all three masters.
	for i := 0; i < 6; i++ {
		topic := fmt.Sprintf("%s-%d", uniqueTopic(t), i)
		sub := newSubscriber(t, cfg)
		a, b := newInbox(), newInbox()
		stopA := start(t, sub, topic, a.handler)
		start(t, sub, topic, b.handler)
		n, err := pub.PublishCount(context.Background(), topic, &bus.Message{Body: []byte("x")})
		if err != nil || n != 2 {
			t.Fatalf("PublishCount on %q = %d, %v; want 2", topic, n, err)
		}
		a.wait(t, 1)
		b.wait(t, 1)
		if err := stopA(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClusterShardedPatternIsUnsupported(t *testing.T) {
	sub := newSubscriber(t, clusterConfig(t))
	err := sub.Subscribe(context.Background(), "orders.*", newInbox().handler)
	if !errors.Is(err, bus.ErrUnsupported) || !strings.Contains(err.Error(), "sharded=false") {
		t.Fatalf("pattern on sharded cluster: %v", err)
	}
}

func TestClusterUnshardedPattern(t *testing.T) {
	cfg := clusterConfig(t)
	off := false
	cfg.Sharded = &off
	prefix := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, cfg), prefix+".*", in.handler)
	pub := newPublisher(t, cfg)
	for i := 0; i < 5; i++ {
		if err := pub.Publish(context.Background(), fmt.Sprintf("%s.%d", prefix, i), &bus.Message{Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	in.wait(t, 5)
}

// Without sharding a cluster node counts only its own subscribers, so the
// publisher reports no ReceiverCount and PublishCount refuses rather than
// return a wrong count. On the commit before this test, PublishCount
// returned the one node's count.
func TestClusterUnshardedPublishCountIsUnsupported(t *testing.T) {
	cfg := clusterConfig(t)
	off := false
	cfg.Sharded = &off
	pub := newPublisher(t, cfg)
	if pub.Capabilities().ReceiverCount {
		t.Fatal("unsharded cluster publisher reports ReceiverCount")
	}
	n, err := pub.PublishCount(context.Background(), uniqueTopic(t), &bus.Message{Body: []byte("x")})
	if !errors.Is(err, bus.ErrUnsupported) || n != 0 {
		t.Fatalf("PublishCount = %d, %v; want ErrUnsupported", n, err)
	}
}
