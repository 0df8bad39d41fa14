package otelbus

import (
	"context"
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/busline/bus"
)

// OpenTelemetry's global providers, until the application installs an
// SDK, are delegates of unexported types that record nothing. Their types
// are read here, before main runs; a type from anywhere else (a provider
// some package's init installed) is not taken for one.
var (
	globalTracerDelegate = delegateType(otel.GetTracerProvider())
	globalMeterDelegate  = delegateType(otel.GetMeterProvider())
)

func delegateType(p any) reflect.Type {
	t := reflect.TypeOf(p)
	if t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" {
		return t
	}
	return nil
}

// switches says, per call, whether traces and metrics are recorded at
// all. A provider is off when it is one of OpenTelemetry's no-op
// providers, or the global one while no SDK is installed: then the
// middleware makes no span and touches no instrument, and only passes on
// a trace context that arrived from elsewhere (propagation through a
// service that does not trace, as OpenTelemetry's no-op tracer does).
// Providers taken from the globals are asked again at every call, so
// installing an SDK after New turns recording on.
type switches struct {
	traceGlobal, meterGlobal bool
	traceOn, meterOn         bool // when not global
}

func newSwitches(tp trace.TracerProvider, mp metric.MeterProvider) switches {
	var s switches
	if t := reflect.TypeOf(tp); t != nil && t == globalTracerDelegate {
		s.traceGlobal = true
	} else {
		s.traceOn = !noopTracer(tp)
	}
	if t := reflect.TypeOf(mp); t != nil && t == globalMeterDelegate {
		s.meterGlobal = true
	} else {
		s.meterOn = !noopMeter(mp)
	}
	return s
}

// tracing reports whether spans are recorded now.
func (s *switches) tracing() bool {
	if s.traceGlobal {
		return !noopTracer(otel.GetTracerProvider())
	}
	return s.traceOn
}

// metering reports whether metrics are recorded now.
func (s *switches) metering() bool {
	if s.meterGlobal {
		return !noopMeter(otel.GetMeterProvider())
	}
	return s.meterOn
}

func noopTracer(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	t := reflect.TypeOf(tp)
	if t == nil || t == globalTracerDelegate {
		return t != nil
	}
	// trace.NewNoopTracerProvider, deprecated but still in use.
	return t.PkgPath() == "go.opentelemetry.io/otel/trace" && t.Name() == "noopTracerProvider"
}

func noopMeter(mp metric.MeterProvider) bool {
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		return true
	}
	return reflect.TypeOf(mp) == globalMeterDelegate
}

// passOut writes the trace context ctx carries, if any, into msgs: what
// a publish does while tracing is off.
func (o *Instrumentation) passOut(ctx context.Context, msgs []*bus.Message) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	for _, m := range msgs {
		if m != nil {
			o.cfg.prop.Inject(ctx, metadataCarrier{m})
		}
	}
}

// passIn returns ctx with the trace context m carries, if any: what a
// handler call gets while tracing is off.
func (o *Instrumentation) passIn(ctx context.Context, m *bus.Message) context.Context {
	if len(m.Metadata) == 0 {
		return ctx
	}
	return o.cfg.prop.Extract(ctx, metadataCarrier{m})
}
