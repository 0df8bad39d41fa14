package otelbus

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/busline/bus"
)

// Health metric names: observed from a bus.HealthReporter at each
// collection.
const (
	// MetricReconnects counts the connections (or subscription channels)
	// lost since the publisher or subscriber was made.
	MetricReconnects = "busline.client.reconnects"
	// MetricHealth is 1 for the current state, with HealthStateKey naming
	// it, and 0 for the others.
	MetricHealth = "busline.client.health"
)

// HealthStateKey names a bus.HealthState in busline.client.health.
const HealthStateKey = attribute.Key("busline.health.state")

// MetricEvents is the counters of a Counter, each with EventKey naming it.
const MetricEvents = "busline.client.events"

// EventKey names a counter in busline.client.events.
const EventKey = attribute.Key("busline.event")

// MetricLag is a subscriber's lag per partition (bus.LagReporter, the
// kafka adapter), with the destination, consumer group and partition as
// attributes.
const MetricLag = "busline.consumer.lag"

// Counter is implemented by publishers and subscribers that keep counters
// of their own, such as the redispubsub subscriber's dropped messages and
// gaps; ObserveHealth exports them as busline.client.events.
type Counter interface {
	Counts() map[string]uint64
}

var healthStates = []bus.HealthState{bus.HealthStarting, bus.HealthLive, bus.HealthReconnecting, bus.HealthClosed}

// ObserveHealth reports r's bus.Health as metrics at every collection:
// busline.client.reconnects and busline.client.health, r's own counters
// as busline.client.events when r is a Counter, and its lag per partition
// as busline.consumer.lag when r is a bus.LagReporter, with attrs (name
// the publisher or subscriber: attribute.String("busline.client",
// "orders-subscriber"), say). Call the returned function to stop.
func (o *Instrumentation) ObserveHealth(r bus.HealthReporter, attrs ...attribute.KeyValue) (stop func() error, err error) {
	m := o.cfg.mp.Meter(ScopeName)
	reconnects, err := m.Int64ObservableCounter(MetricReconnects,
		metric.WithDescription("Connections or subscription channels lost."), metric.WithUnit("{reconnect}"))
	if err != nil {
		return nil, err
	}
	state, err := m.Int64ObservableGauge(MetricHealth,
		metric.WithDescription("1 for the current health state, 0 for the others."))
	if err != nil {
		return nil, err
	}
	events, err := m.Int64ObservableCounter(MetricEvents,
		metric.WithDescription("The client's own counters (dropped messages, gaps, ...), by busline.event."))
	if err != nil {
		return nil, err
	}
	lagGauge, err := m.Int64ObservableGauge(MetricLag,
		metric.WithDescription("Messages of a partition past the last one the subscription finished."), metric.WithUnit("{message}"))
	if err != nil {
		return nil, err
	}
	counter, _ := r.(Counter)
	lagger, _ := r.(bus.LagReporter)
	base := metric.WithAttributes(attrs...)
	perState := make([]metric.ObserveOption, len(healthStates))
	for i, s := range healthStates {
		perState[i] = metric.WithAttributes(append(append([]attribute.KeyValue(nil), attrs...), HealthStateKey.String(s.String()))...)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		h := r.Health()
		ob.ObserveInt64(reconnects, int64(h.Reconnects), base)
		for i, s := range healthStates {
			v := int64(0)
			if h.State == s {
				v = 1
			}
			ob.ObserveInt64(state, v, perState[i])
		}
		if lagger != nil {
			for _, l := range lagger.Lag() {
				la := append(append([]attribute.KeyValue(nil), attrs...),
					attribute.String("messaging.destination.name", l.Topic),
					attribute.String("messaging.destination.partition.id", strconv.Itoa(l.Partition)))
				if l.Group != "" {
					la = append(la, attribute.String("messaging.consumer.group.name", l.Group))
				}
				ob.ObserveInt64(lagGauge, l.Lag, metric.WithAttributes(la...))
			}
		}
		if counter != nil {
			for name, v := range counter.Counts() {
				ob.ObserveInt64(events, int64(v),
					metric.WithAttributes(append(append([]attribute.KeyValue(nil), attrs...), EventKey.String(name))...))
			}
		}
		return nil
	}, reconnects, state, events, lagGauge)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
