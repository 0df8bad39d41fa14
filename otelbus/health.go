package otelbus

import (
	"context"

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

var healthStates = []bus.HealthState{bus.HealthStarting, bus.HealthLive, bus.HealthReconnecting, bus.HealthClosed}

// ObserveHealth reports r's bus.Health as metrics at every collection:
// busline.client.reconnects and busline.client.health, with attrs (name
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
		return nil
	}, reconnects, state)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
