// Package bustest is the conformance suite every busline adapter passes
// against its real broker. An adapter's test hooks its publisher and
// subscriber into a Harness and calls Run; the suite reads the adapter's
// Capabilities to choose the checks that apply.
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, bustest.Harness{
//			NewPublisher:  func(t *testing.T) bus.Publisher { ... },
//			NewSubscriber: func(t *testing.T) bus.Subscriber { ... },
//		})
//	}
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/busline/bus"
)

// Harness connects the suite to one adapter.
type Harness struct {
	// NewPublisher returns a new publisher on the broker under test. The
	// suite closes it. Required.
	NewPublisher func(t *testing.T) bus.Publisher
	// NewSubscriber returns a new subscriber on the broker under test. It
	// must implement bus.CapabilityReporter. The suite closes it. Required.
	NewSubscriber func(t *testing.T) bus.Subscriber
	// NewTopic returns a topic name no other test uses, and creates the
	// topic and its dead letter topic (name + bus.DeadLetterSuffix) where
	// the broker needs topics created. Default: a random name.
	NewTopic func(t *testing.T) string
	// ReadDeadLetters, when set, returns the first n messages the dead
	// letter topic holds, waiting until ctx ends. Adapters whose dead letter
	// destination cannot be subscribed to (a Redis list) set it; otherwise
	// the suite subscribes to the dead letter topic.
	ReadDeadLetters func(ctx context.Context, t *testing.T, topic string, n int) ([]*bus.Message, error)
	// Timeout bounds every wait of the suite. Default: 60s.
	Timeout time.Duration
	// LoadMessages is the number of messages of the load check.
	// Default: 10000.
	LoadMessages int
}
