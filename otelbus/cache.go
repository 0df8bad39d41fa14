package otelbus

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// attrOpts carries one attribute set as the options the instruments take,
// built once so that recording allocates nothing.
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newAttrOpts(attrs ...attribute.KeyValue) attrOpts {
	o := metric.WithAttributeSet(attribute.NewSet(attrs...))
	return attrOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

// outcomes in the order of dest.outcome.
var outcomeNames = [...]string{OutcomeAck, OutcomeRetry, OutcomeDeadLetter, OutcomeAbandon}

// dest is what one middleware keeps for one destination (system and
// topic): the span name and start options, and the metric attribute sets.
// There are as many as topics the application uses.
type dest struct {
	system, topic string
	spanName      string
	start         []trace.SpanStartOption
	base          []attribute.KeyValue
	opts          attrOpts                    // the base attributes
	outcome       [len(outcomeNames)]attrOpts // base + busline.outcome
	mu            sync.Mutex                  // guards errs
	errs          map[string]attrOpts         // base + error.type
}

// withError returns the options for the base attributes and error.type.
func (d *dest) withError(errType string) attrOpts {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, ok := d.errs[errType]
	if !ok {
		o = newAttrOpts(append(d.base[:len(d.base):len(d.base)], semconv.ErrorTypeKey.String(errType))...)
		d.errs[errType] = o
	}
	return o
}

// outcomeOpts returns the options for the base attributes and outcome.
func (d *dest) outcomeOpts(outcome string) attrOpts {
	for i, n := range outcomeNames {
		if n == outcome {
			return d.outcome[i]
		}
	}
	return d.opts
}

type destKey struct{ system, topic string }

// dests maps (system, topic) to its dest, built on first use.
type dests struct {
	op    string // "send" or "process"
	kind  trace.SpanKind
	opTyp attribute.KeyValue
	group string
	// m is replaced, never changed, so that lookups take no lock; mu
	// serializes the replacements.
	m  atomic.Pointer[map[destKey]*dest]
	mu sync.Mutex
	// last is the dest last looked up: most middlewares see one topic.
	last atomic.Pointer[dest]
}

func newDests(op string, kind trace.SpanKind, opType attribute.KeyValue, group string) *dests {
	ds := &dests{op: op, kind: kind, opTyp: opType, group: group}
	ds.m.Store(&map[destKey]*dest{})
	return ds
}

func (ds *dests) get(system, topic string) *dest {
	if d := ds.last.Load(); d != nil && d.topic == topic && d.system == system {
		return d
	}
	k := destKey{system, topic}
	if d := (*ds.m.Load())[k]; d != nil {
		ds.last.Store(d)
		return d
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	old := *ds.m.Load()
	if d := old[k]; d != nil {
		return d
	}
	base := []attribute.KeyValue{
		semconv.MessagingSystemKey.String(system),
		semconv.MessagingDestinationName(topic),
		semconv.MessagingOperationName(ds.op),
	}
	if ds.group != "" {
		base = append(base, semconv.MessagingConsumerGroupName(ds.group))
	}
	base = base[:len(base):len(base)]
	d := &dest{
		system:   system,
		topic:    topic,
		spanName: ds.op + " " + topic,
		base:     base,
		opts:     newAttrOpts(base...),
		errs:     map[string]attrOpts{},
	}
	d.start = []trace.SpanStartOption{
		trace.WithSpanKind(ds.kind),
		trace.WithAttributes(append(base, ds.opTyp)...),
	}
	for i, n := range outcomeNames {
		d.outcome[i] = newAttrOpts(append(base, OutcomeKey.String(n))...)
	}
	m := make(map[destKey]*dest, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = d
	ds.m.Store(&m)
	return d
}
