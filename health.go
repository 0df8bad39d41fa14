package bus

import (
	"fmt"
	"time"
)

// HealthState is where a publisher or subscriber stands with its broker.
type HealthState int

const (
	// HealthStarting: not live yet (a subscription before OnReady).
	HealthStarting HealthState = iota
	// HealthLive: connected, and every subscription is live.
	HealthLive
	// HealthReconnecting: the connection (or a subscription's channel)
	// was lost and is being re-established; Health.Err says why.
	HealthReconnecting
	// HealthClosed: Close or Shutdown was called.
	HealthClosed
)

// String returns the state's name: "starting", "live", "reconnecting" or
// "closed".
func (s HealthState) String() string {
	switch s {
	case HealthStarting:
		return "starting"
	case HealthLive:
		return "live"
	case HealthReconnecting:
		return "reconnecting"
	case HealthClosed:
		return "closed"
	}
	return fmt.Sprintf("HealthState(%d)", int(s))
}

// Health is a publisher's or subscriber's state, for code and for
// readiness probes. A subscriber reports the least healthy of its running
// subscriptions: the one reconnecting the longest, else one still
// starting, else live.
type Health struct {
	State HealthState
	// Since is when State began.
	Since time.Time
	// Err is the last error while reconnecting, else nil. Adapters wrap
	// the bus sentinel it falls under (ErrUnreachable, ErrPermission, ...)
	// where they can tell.
	Err error
	// Reconnects counts the times the connection (or a subscription's
	// channel) was lost since the publisher or subscriber was made,
	// summed over a subscriber's subscriptions, ended ones included.
	Reconnects uint64
}

// Healthy reports whether h is fit to serve: live, starting, or
// reconnecting for less than grace (a broker restart or a network blip
// shorter than grace is no reason to pull the instance); closed is not.
func (h Health) Healthy(grace time.Duration) bool {
	switch h.State {
	case HealthLive, HealthStarting:
		return true
	case HealthReconnecting:
		return time.Since(h.Since) < grace
	}
	return false
}

// HealthReporter is implemented by the publishers and subscribers of
// every busline adapter. A kafka group member reports failed joins of its
// group (connections kafka-go's reader retries inside a generation do not
// show); the kafka and redispubsub publishers learn of a lost broker from
// a publish that cannot reach it; the amqp publisher from its channel.
type HealthReporter interface {
	Health() Health
}

// PartitionLag is how far one subscription is behind on one partition.
type PartitionLag struct {
	Topic string
	// Group is the consumer group, empty for a broadcast subscription.
	Group     string
	Partition int
	// Lag is how many messages the partition held, as of the last fetch,
	// past the last one the subscription finished handling.
	Lag int64
}

// LagReporter is implemented by subscribers whose broker client knows the
// end of each partition it reads (the kafka adapter): Lag returns one
// entry per partition that a running subscription is reading.
type LagReporter interface {
	Lag() []PartitionLag
}
