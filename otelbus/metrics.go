package otelbus

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. The messaging.* ones are OpenTelemetry's semantic
// conventions; the busline.* ones have no convention.
const (
	MetricSent              = "messaging.client.sent.messages"
	MetricOperationDuration = "messaging.client.operation.duration"
	MetricConsumed          = "messaging.client.consumed.messages"
	MetricProcessDuration   = "messaging.process.duration"
	MetricOutcomes          = "busline.process.outcomes"
	MetricActive            = "busline.process.active"
	MetricRedeliveries      = "busline.consumer.redeliveries"
)

// OutcomeKey is the attribute of busline.process.outcomes and of process
// spans that says what became of a handler attempt.
const OutcomeKey = attribute.Key("busline.outcome")

// Outcomes of a handler attempt.
const (
	// OutcomeAck: the handler returned nil; the message is acknowledged.
	OutcomeAck = "ack"
	// OutcomeRetry: the handler failed; the message will be handed to it again.
	OutcomeRetry = "retry"
	// OutcomeDeadLetter: the handler failed for good (a bus.Permanent
	// error, or the retry policy's last attempt); the message goes to the
	// dead letter topic.
	OutcomeDeadLetter = "dead_letter"
	// OutcomeAbandon: the handler's context ended; the message is left
	// for the broker to redeliver.
	OutcomeAbandon = "abandon"
)

// AttemptKey is the process span attribute with Delivery.Attempt.
const AttemptKey = attribute.Key("busline.attempt")

// RedeliveredKey is the process span attribute with Delivery.Redelivered.
const RedeliveredKey = attribute.Key("busline.redelivered")

// durationBuckets are the explicit bucket boundaries, in seconds, the
// messaging conventions recommend for duration histograms.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

type instruments struct {
	sent         metric.Int64Counter
	opDuration   metric.Float64Histogram
	consumed     metric.Int64Counter
	procDuration metric.Float64Histogram
	outcomes     metric.Int64Counter
	active       metric.Int64UpDownCounter
	redeliveries metric.Int64Counter
}

// newInstruments creates the instruments on m. An instrument m fails to
// create is a no-op one (the metric API returns one beside the error, and
// reports the error through otel.Handle in the SDK).
func newInstruments(m metric.Meter) *instruments {
	in := &instruments{}
	in.sent, _ = m.Int64Counter(MetricSent, metric.WithUnit("{message}"),
		metric.WithDescription("Messages the broker took, or failed to take (error.type), in Publish."))
	in.opDuration, _ = m.Float64Histogram(MetricOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of Publish calls, until the broker confirmed."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.consumed, _ = m.Int64Counter(MetricConsumed, metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered to a handler (first attempts)."))
	in.procDuration, _ = m.Float64Histogram(MetricProcessDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of handler attempts."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.outcomes, _ = m.Int64Counter(MetricOutcomes, metric.WithUnit("{attempt}"),
		metric.WithDescription("Handler attempts by outcome (busline.outcome: ack, retry, dead_letter, abandon)."))
	in.active, _ = m.Int64UpDownCounter(MetricActive, metric.WithUnit("{message}"),
		metric.WithDescription("Handler attempts running now."))
	in.redeliveries, _ = m.Int64Counter(MetricRedeliveries, metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries the broker flagged as redelivered."))
	return in
}
