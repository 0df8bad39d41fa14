package redispubsub_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/busline/bus"
	"github.com/busline/bus/internal/ce"
	"github.com/busline/bus/redispubsub"
)

func TestParseURL(t *testing.T) {
	tru := true
	cases := []struct {
		url  string
		want func(c redispubsub.Config) bool
	}{
		{"redis://", func(c redispubsub.Config) bool { return c.Addr == "" && !c.TLS && c.DB == 0 }},
		{"redis://localhost", func(c redispubsub.Config) bool { return c.Addr == "localhost:6379" }},
		{"rediss://u:p%40ss@h:6380/3", func(c redispubsub.Config) bool {
			return c.TLS && c.Addr == "h:6380" && c.Username == "u" && c.Password == "p@ss" && c.DB == 3
		}},
		{"redis://h?format=raw&buffer_size=10&buffer_wait=5ms&ping_interval=1s&max_body=100&dead_letter_max_len=7&client_name=x&pool_size=3&dial_timeout=1s&read_timeout=2s&write_timeout=3s&max_reconnect_backoff=1s",
			func(c redispubsub.Config) bool {
				return c.Format == "raw" && c.BufferSize == 10 && c.BufferWait == 5*time.Millisecond && c.PingInterval == time.Second &&
					c.MaxBody == 100 && c.DeadLetterMaxLen == 7 && c.ClientName == "x" && c.PoolSize == 3 &&
					c.DialTimeout == time.Second && c.ReadTimeout == 2*time.Second && c.WriteTimeout == 3*time.Second && c.MaxReconnectBackoff == time.Second
			}},
		{"redis://a:1?cluster=true&addrs=b:2,c:3", func(c redispubsub.Config) bool {
			return c.Cluster && c.Addr == "a:1" && len(c.Addrs) == 2 && c.Addrs[1] == "c:3" && c.Sharded == nil
		}},
		{"redis://a:1?cluster=true&sharded=false", func(c redispubsub.Config) bool { return c.Sharded != nil && !*c.Sharded }},
		{"redis://a:1?sharded=true", func(c redispubsub.Config) bool { return c.Sharded != nil && *c.Sharded == tru }},
	}
	for _, c := range cases {
		cfg, err := redispubsub.ParseURL(c.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.url, err)
			continue
		}
		if !c.want(cfg) {
			t.Errorf("ParseURL(%q) = %+v", c.url, cfg)
		}
	}
	bad := []string{
		"redis://h?colour=blue",              // unknown parameter
		"redis://h?format=xml",               // bad enum
		"redis://h/abc",                      // bad database
		"redis://h?addrs=b:2",                // addrs without cluster
		"redis://h/2?cluster=true",           // cluster has no databases
		"redis://h?buffer_size=0",            // too small
		"redis://h?buffer_wait=soon",         // not a duration
		"redis://h?format=raw&format=raw",    // repeated
		"redis://:hunter2@h?password=x",      // unknown, and must not leak
		"amqp://h",                           // wrong scheme
		"redis://h?tls_ca_file=/nonexistent", // unreadable file
	}
	for _, u := range bad {
		_, err := redispubsub.ParseURL(u)
		if !errors.Is(err, bus.ErrInvalid) {
			t.Errorf("ParseURL(%q) = %v, want ErrInvalid", u, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "redispubsub: ") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) error %q", u, err)
		}
	}
}

// The seed's plain `PUBLISH notifications "Hello, Redis!"` from a client
// that knows nothing of busline reaches the handler with its body intact.
func TestInteropPlainPublishReachesHandler(t *testing.T) {
	topic := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, standaloneConfig()), topic, in.handler)
	payloads := []string{"Hello, Redis!", `{"not":"a cloudevent"}`, "\x00\xff binary \x80", ""}
	for _, p := range payloads {
		n, err := rawClient(t).Publish(context.Background(), topic, p).Result()
		if err != nil || n != 1 {
			t.Fatalf("plain PUBLISH = %d, %v; want 1 receiver", n, err)
		}
	}
	got := in.wait(t, len(payloads))
	for i, p := range payloads {
		m := got[i]
		if string(m.Body) != p || m.ID == "" || m.Delivery.Topic != topic || m.Delivery.Attempt != 1 {
			t.Errorf("message %d: body %q id %q delivery %+v; want body %q", i, m.Body, m.ID, m.Delivery, p)
		}
		var native *goredis.Message
		if !m.As(&native) || native.Channel != topic || native.Payload != p {
			t.Errorf("message %d: As(*goredis.Message) = %v", i, native)
		}
	}
}

// Raw mode sends exactly Body; a plain SUBSCRIBE client sees the bytes.
func TestInteropRawReachesPlainSubscriber(t *testing.T) {
	topic := uniqueTopic(t)
	ctx := context.Background()
	ps := rawClient(t).Subscribe(ctx, topic)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(ctx, waitLimit); err != nil { // the subscribe confirmation
		t.Fatal(err)
	}
	cfg := standaloneConfig()
	cfg.Format = redispubsub.FormatRaw
	pub := newPublisher(t, cfg)
	bodies := [][]byte{[]byte("Hello, Redis!"), {0, 1, 2, 0xfe, 0xff}, []byte(`{"specversion":"1.0"}`)}
	for _, b := range bodies {
		n, err := pub.PublishCount(ctx, topic, &bus.Message{Type: "t", Metadata: map[string]string{"k": "v"}, Body: b})
		if err != nil || n != 1 {
			t.Fatalf("PublishCount = %d, %v; want 1", n, err)
		}
	}
	for i, b := range bodies {
		v, err := ps.ReceiveTimeout(ctx, waitLimit)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := v.(*goredis.Message)
		if !ok || m.Payload != string(b) {
			t.Fatalf("plain subscriber got %#v, want payload %q (message %d)", v, b, i)
		}
	}
	// Structured mode: a plain subscriber sees one CloudEvents JSON document.
	spub := newPublisher(t, standaloneConfig())
	if err := spub.Publish(ctx, topic, &bus.Message{ID: "id-1", Type: "order.created", Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	v, err := ps.ReceiveTimeout(ctx, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	var got bus.Message
	if err := ce.UnmarshalStructured([]byte(v.(*goredis.Message).Payload), &got); err != nil || got.ID != "id-1" || string(got.Body) != "hi" {
		t.Fatalf("structured payload %q decodes to %+v, %v", v.(*goredis.Message).Payload, got, err)
	}
}

func TestReceiverCount(t *testing.T) {
	ctx := context.Background()
	topic := uniqueTopic(t)
	pub := newPublisher(t, standaloneConfig())
	count := func() int {
		n, err := pub.PublishCount(ctx, topic, &bus.Message{Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("no subscribers: count %d", n)
	}
	sub := newSubscriber(t, standaloneConfig())
	stop1 := start(t, sub, topic, newInbox().handler)
	start(t, newSubscriber(t, standaloneConfig()), topic, newInbox().handler)
	// A plain client counts too.
	ps := rawClient(t).Subscribe(ctx, topic)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(ctx, waitLimit); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("three subscribers: count %d", n)
	}
	if err := stop1(); err != nil {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
	// Subscribe returns once it closed its connection; Redis drops the
	// subscription when it notices the close, so wait for that.
	deadline := time.Now().Add(waitLimit)
	for n := count(); n != 2; n = count() {
		if n != 3 || time.Now().After(deadline) {
			t.Fatalf("after one stopped: count %d", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A pipelined batch reports the sum.
	var _ bus.ReceiverCounter = pub
}

func TestPatternSubscription(t *testing.T) {
	ctx := context.Background()
	prefix := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, standaloneConfig()), prefix+".*", in.handler)
	pub := newPublisher(t, standaloneConfig())
	for _, ch := range []string{prefix + ".eu", prefix + ".us", prefix + "-other"} {
		if err := pub.Publish(ctx, ch, &bus.Message{Body: []byte(ch)}); err != nil {
			t.Fatal(err)
		}
	}
	// A marker after the non-matching channel: once it is in, the other
	// would have been too.
	if err := pub.Publish(ctx, prefix+".zz", &bus.Message{Body: []byte("end")}); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, 3)
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3", len(got))
	}
	for _, m := range got[:2] {
		if m.Delivery.Topic != string(m.Body) {
			t.Errorf("Delivery.Topic %q for a message published on %q", m.Delivery.Topic, m.Body)
		}
	}
	var native *goredis.Message
	if !got[0].As(&native) || native.Pattern != prefix+".*" {
		t.Errorf("native message %+v", native)
	}
}

func TestBatchIsPipelinedInOrder(t *testing.T) {
	topic := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, standaloneConfig()), topic, in.handler)
	msgs := make([]*bus.Message, 200)
	for i := range msgs {
		msgs[i] = &bus.Message{Key: "k", Body: []byte(strconv.Itoa(i))}
	}
	if err := newPublisher(t, standaloneConfig()).Publish(context.Background(), topic, msgs...); err != nil {
		t.Fatal(err)
	}
	for i, m := range in.wait(t, len(msgs)) {
		if string(m.Body) != strconv.Itoa(i) || m.ID != msgs[i].ID {
			t.Fatalf("message %d out of order: %q", i, m.Body)
		}
	}
}

func TestGroupIsUnsupported(t *testing.T) {
	sub := newSubscriber(t, standaloneConfig())
	err := sub.Subscribe(context.Background(), uniqueTopic(t), newInbox().handler, bus.Group("workers"))
	if !errors.Is(err, bus.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Subscribe with a group: %v, want ErrUnsupported", err)
	}
	for _, want := range []string{"redispubsub: ", "amqp", "kafka", "Redis Streams", "workers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	ctx := context.Background()
	admin := rawClient(t)
	user := "busline-test-" + uniqueTopic(t)[14:]
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">right-password", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { _ = admin.Do(context.Background(), "ACL", "DELUSER", user).Err() })

	const secret = "wrong-password-s3cret"
	for _, open := range []func() error{
		func() error {
			_, err := redispubsub.NewSubscriber(ctx, redispubsub.Config{Addr: redisAddr, Username: user, Password: secret})
			return err
		},
		func() error {
			_, err := bus.OpenPublisher(ctx, "redis://"+user+":"+secret+"@"+redisAddr)
			return err
		},
	} {
		err := open()
		if !errors.Is(err, bus.ErrPermission) {
			t.Fatalf("wrong password: %v, want ErrPermission", err)
		}
		if strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "redispubsub: ") {
			t.Fatalf("error %q leaks the password or lacks the prefix", err)
		}
	}
	// The right password works end to end.
	cfg := redispubsub.Config{Addr: redisAddr, Username: user, Password: "right-password"}
	topic := uniqueTopic(t)
	in := newInbox()
	start(t, newSubscriber(t, cfg), topic, in.handler)
	if err := newPublisher(t, cfg).Publish(ctx, topic, &bus.Message{Body: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	in.wait(t, 1)
}

func TestUnreachableHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // now nothing listens there
	ctx := context.Background()
	_, err = redispubsub.NewSubscriber(ctx, redispubsub.Config{Addr: addr, DialTimeout: time.Second})
	if !errors.Is(err, bus.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("unreachable host: %v, want ErrUnreachable naming %s", err, addr)
	}
	_, err = bus.OpenPublisher(ctx, "redis://:pw-s3cret@"+addr+"?dial_timeout=1s")
	if !errors.Is(err, bus.ErrUnreachable) || strings.Contains(err.Error(), "pw-s3cret") {
		t.Fatalf("unreachable host by URL: %v", err)
	}
}

func TestUnknownURLParam(t *testing.T) {
	_, err := bus.OpenSubscriber(context.Background(), "redis://:hunter2@"+redisAddr+"?group=workers")
	if !errors.Is(err, bus.ErrInvalid) || !strings.Contains(err.Error(), "group") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unknown URL parameter: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	cfg := standaloneConfig()
	cfg.MaxBody = 10
	err := newPublisher(t, cfg).Publish(context.Background(), uniqueTopic(t), &bus.Message{Body: make([]byte, 11)})
	if !errors.Is(err, bus.ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
}

// syncBuffer is a log sink the test can read while the adapter writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clientIDs returns the ids of the pub/sub connections named name.
func clientIDs(t *testing.T, c *goredis.Client, name string) []string {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	idRe := regexp.MustCompile(`(?:^| )id=(\d+) `)
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") || strings.Contains(line, " sub=0 psub=0") && !strings.Contains(line, "cmd=subscribe") {
			continue
		}
		if m := idRe.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

func TestReconnectAfterClientKill(t *testing.T) {
	ctx := context.Background()
	topic := uniqueTopic(t)
	logs := &syncBuffer{}
	cfg := standaloneConfig()
	cfg.ClientName = "busline-kill-" + topic[len(topic)-8:]
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	sub := newSubscriber(t, cfg)
	in := newInbox()
	start(t, sub, topic, in.handler)
	pub := newPublisher(t, standaloneConfig())
	for i := 0; i < 20; i++ {
		if err := pub.Publish(ctx, topic, &bus.Message{Body: []byte("before-" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	in.wait(t, 20)

	admin := rawClient(t)
	ids := clientIDs(t, admin, cfg.ClientName)
	if len(ids) != 1 {
		t.Fatalf("want exactly one subscriber connection named %s, found %v", cfg.ClientName, ids)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
		t.Fatalf("CLIENT KILL ID %s: %v", ids[0], err)
	}
	waitUntil(t, "the gap to be reported", nil, func() bool { return sub.Stats().Gaps >= 1 })

	// Resubscribed on a new connection, by itself.
	if now := clientIDs(t, admin, cfg.ClientName); len(now) != 1 || now[0] == ids[0] {
		t.Fatalf("after the kill the subscriber connections are %v (killed %s)", now, ids[0])
	}
	n, err := pub.PublishCount(ctx, topic, &bus.Message{Body: []byte("after")})
	if err != nil || n != 1 {
		t.Fatalf("PublishCount after resubscribe = %d, %v", n, err)
	}
	got := in.wait(t, 21)
	if last := got[len(got)-1]; string(last.Body) != "after" {
		t.Fatalf("last message %q", last.Body)
	}
	waitUntil(t, "21 handled", nil, func() bool { return sub.Stats().Handled == 21 })
	st := sub.Stats()
	if st.Disconnects < 1 || st.Gaps < 1 || st.Received != 21 || st.GapTime <= 0 {
		t.Fatalf("stats %+v", st)
	}
	if l := logs.String(); !strings.Contains(l, "messages published in the gap are lost") || !strings.Contains(l, topic) {
		t.Fatalf("gap not logged:\n%s", l)
	}
}

func TestSlowConsumerDropsAndCounts(t *testing.T) {
	ctx := context.Background()
	topic := uniqueTopic(t)
	logs := &syncBuffer{}
	cfg := standaloneConfig()
	cfg.BufferSize = 4
	cfg.BufferWait = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	sub := newSubscriber(t, cfg)
	release := make(chan struct{})
	in := newInbox()
	h := func(ctx context.Context, m *bus.Message) error {
		<-release
		return in.handler(ctx, m)
	}
	start(t, sub, topic, h)
	const n = 100
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{Body: []byte(strconv.Itoa(i))}
	}
	if err := newPublisher(t, standaloneConfig()).Publish(ctx, topic, msgs...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every message read", nil, func() bool { return sub.Stats().Received == n })
	close(release)
	// 1 in the handler, 4 in the buffer, maybe 1 in the dispatcher's hand.
	waitUntil(t, "the kept messages handled", nil, func() bool { return in.len() == n-int(sub.Stats().Dropped) })
	st := sub.Stats()
	if st.Dropped < n-6 || st.Dropped > n-5 {
		t.Fatalf("dropped %d of %d with a buffer of 4: %+v", st.Dropped, n, st)
	}
	waitUntil(t, "handled count", nil, func() bool { return sub.Stats().Handled == uint64(in.len()) })
	if st.Handled > uint64(in.len()) {
		t.Fatalf("stats %+v, handled %d", st, in.len())
	}
	if l := logs.String(); !strings.Contains(l, "buffer full") {
		t.Fatalf("drops not logged:\n%s", l)
	}
	// Messages keep flowing afterwards.
	if err := newPublisher(t, standaloneConfig()).Publish(ctx, topic, &bus.Message{Body: []byte("later")}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a message after the overload", in.poke, func() bool {
		all := in.all()
		return string(all[len(all)-1].Body) == "later"
	})
}

func TestDeadLetterList(t *testing.T) {
	ctx := context.Background()
	topic := uniqueTopic(t)
	admin := rawClient(t)
	t.Cleanup(func() { admin.Del(context.Background(), topic+bus.DeadLetterSuffix) })
	sub := newSubscriber(t, standaloneConfig())
	h := func(ctx context.Context, m *bus.Message) error {
		if string(m.Body) == "bad" {
			return errors.New("cannot handle bad")
		}
		return nil
	}
	start(t, sub, topic, h, bus.Retry(bus.RetryPolicy{MaxAttempts: 2}))
	// A handler failure, a plain payload failure, and a malformed event.
	if err := newPublisher(t, standaloneConfig()).Publish(ctx, topic, &bus.Message{ID: "m1", Body: []byte("bad")}); err != nil {
		t.Fatal(err)
	}
	admin.Publish(ctx, topic, "bad")
	admin.Publish(ctx, topic, `{"specversion":"0.3","id":"x"}`)
	dl := topic + bus.DeadLetterSuffix
	var docs []string
	waitUntil(t, "three dead letters", nil, func() bool {
		docs = admin.LRange(ctx, dl, 0, -1).Val()
		return len(docs) >= 3
	})
	var got []bus.Message
	for _, d := range docs {
		var m bus.Message
		if err := ce.UnmarshalStructured([]byte(d), &m); err != nil {
			t.Fatalf("dead letter %q: %v", d, err)
		}
		got = append(got, m)
	}
	if got[0].ID != "m1" || string(got[0].Body) != "bad" || got[0].Metadata[bus.MetaDeadLetterAttempts] != "2" ||
		got[0].Metadata[bus.MetaDeadLetterTopic] != topic || !strings.Contains(got[0].Metadata[bus.MetaDeadLetterError], "cannot handle bad") {
		t.Errorf("first dead letter %+v", got[0])
	}
	if string(got[1].Body) != "bad" {
		t.Errorf("second dead letter %+v", got[1])
	}
	if string(got[2].Body) != `{"specversion":"0.3","id":"x"}` || got[2].Metadata[bus.MetaDeadLetterAttempts] != "0" ||
		!strings.Contains(got[2].Metadata[bus.MetaDeadLetterError], "malformed") {
		t.Errorf("poison dead letter %+v", got[2])
	}
	waitUntil(t, "stats", nil, func() bool { return sub.Stats().DeadLettered == 3 })
	if st := sub.Stats(); st.Malformed != 1 || st.Handled != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestAs(t *testing.T) {
	pub := newPublisher(t, standaloneConfig())
	var uc goredis.UniversalClient
	var c *goredis.Client
	var cc *goredis.ClusterClient
	if !pub.As(&uc) || !pub.As(&c) || pub.As(&cc) || c.Options().Addr != redisAddr {
		t.Fatalf("As: %v %v %v", uc, c, cc)
	}
	var s string
	if newSubscriber(t, standaloneConfig()).As(&s) {
		t.Fatal("As(*string) succeeded")
	}
}

func TestCloseIsIdempotentAndDrains(t *testing.T) {
	sub := newSubscriber(t, standaloneConfig())
	topic := uniqueTopic(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stop := start(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	if err := newPublisher(t, standaloneConfig()).Publish(context.Background(), topic, &bus.Message{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("handler not called")
	}
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close hung")
	}
	if err := stop(); err != nil {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sub.Subscribe(context.Background(), topic, newInbox().handler); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// A subscription that stops hands what it already received to the handler
// (Redis will not deliver it again); a Shutdown deadline that ends first
// discards the rest and counts it.
func TestStopHandlesBufferedMessages(t *testing.T) {
	const n = 10
	publish := func(t *testing.T, topic string) {
		msgs := make([]*bus.Message, n)
		for i := range msgs {
			msgs[i] = &bus.Message{Body: []byte(strconv.Itoa(i))}
		}
		if err := newPublisher(t, standaloneConfig()).Publish(context.Background(), topic, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ctx ends", func(t *testing.T) {
		sub := newSubscriber(t, standaloneConfig())
		topic := uniqueTopic(t)
		release := make(chan struct{})
		in := newInbox()
		stop := start(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
			<-release
			return in.handler(ctx, m)
		})
		publish(t, topic)
		waitUntil(t, "every message read", nil, func() bool { return sub.Stats().Received == n })
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		close(release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if in.len() != n || sub.Stats().Discarded != 0 {
			t.Fatalf("handled %d of %d received before the stop: %+v", in.len(), n, sub.Stats())
		}
	})
	t.Run("shutdown deadline", func(t *testing.T) {
		sub := newSubscriber(t, standaloneConfig())
		topic := uniqueTopic(t)
		in := newInbox()
		start(t, sub, topic, func(ctx context.Context, m *bus.Message) error {
			<-ctx.Done() // holds the first message until the deadline
			return in.handler(ctx, m)
		})
		publish(t, topic)
		waitUntil(t, "every message read", nil, func() bool { return sub.Stats().Received == n })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := sub.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want its deadline's error", err)
		}
		waitUntil(t, "the rest discarded", nil, func() bool { return sub.Stats().Discarded == n-1 })
	})
}
