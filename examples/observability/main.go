// Command observability publishes and handles an event every interval with
// OpenTelemetry wired in through otelbus: spans print to stdout, metrics
// are served for Prometheus at /metrics, and /healthz answers 200 while the
// subscriber is healthy (503 once it has been reconnecting for longer than
// -grace).
//
//	go run ./examples/observability -url redis://127.0.0.1:6379/0
//	curl -s localhost:9464/metrics | grep messaging_
//	curl -i localhost:9464/healthz
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/busline/bus"
	"github.com/busline/bus/examples/internal/exampleutil"
	"github.com/busline/bus/otelbus"
)

func main() {
	fs := flag.NewFlagSet("observability", flag.ExitOnError)
	url := exampleutil.URLFlag(fs)
	addr := fs.String("addr", "127.0.0.1:9464", "address to serve /metrics and /healthz on")
	topic := fs.String("topic", "observability", "topic")
	every := fs.Duration("every", time.Second, "publish an event this often")
	count := fs.Int("count", 0, "exit after this many handled events (0: run until interrupted)")
	grace := fs.Duration("grace", 30*time.Second, "how long reconnecting still counts as healthy")
	spans := fs.Bool("spans", true, "print spans to stdout")
	_ = fs.Parse(os.Args[1:])
	ctx, cancel := exampleutil.SignalContext()
	defer cancel()
	if err := run(ctx, *url, *addr, *topic, *every, *count, *grace, *spans); err != nil {
		exampleutil.Fatal("observability", err)
	}
}

func run(ctx context.Context, url, addr, topic string, every time.Duration, count int, grace time.Duration, spans bool) error {
	// OpenTelemetry: spans to stdout, metrics for Prometheus, W3C trace
	// context in the messages.
	var tpOpts []sdktrace.TracerProviderOption
	if spans {
		exp, err := stdouttrace.New()
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	reg := prometheus.NewRegistry()
	metrics, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	rawPub, err := bus.OpenPublisher(ctx, url)
	if err != nil {
		return err
	}
	defer rawPub.Close()
	rawSub, err := bus.OpenSubscriber(ctx, url)
	if err != nil {
		return err
	}
	defer rawSub.Close()

	var opts []bus.SubscribeOption
	var oopts []otelbus.Option
	if cr, ok := rawSub.(bus.CapabilityReporter); ok && cr.Capabilities().Groups {
		opts = append(opts, bus.Group("observability"))
		oopts = append(oopts, otelbus.Group("observability"))
	}
	o := otelbus.New(oopts...)
	pub := bus.UsePublisher(rawPub, o.PublishMiddleware())
	sub := bus.UseSubscriber(rawSub, o.Middleware())
	// State and reconnects of each side, as metrics.
	for name, c := range map[string]any{"publisher": rawPub, "subscriber": rawSub} {
		if hr, ok := c.(bus.HealthReporter); ok {
			stop, err := o.ObserveHealth(hr, attribute.String("busline.client", name))
			if err != nil {
				return err
			}
			defer stop()
		}
	}

	handled := make(chan string, 16)
	running, err := bus.Start(ctx, sub, topic, func(hctx context.Context, m *bus.Message) error {
		select {
		case handled <- m.ID:
			return nil
		case <-hctx.Done():
			return hctx.Err()
		}
	}, opts...)
	if err != nil {
		return err
	}
	defer running.Stop()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := bus.Health{State: bus.HealthLive}
		if hr, ok := rawSub.(bus.HealthReporter); ok {
			h = hr.Health()
		}
		if !h.Healthy(grace) {
			http.Error(w, fmt.Sprintf("%s since %s: %v", h.State, h.Since.Format(time.RFC3339), h.Err), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, h.State)
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("serving /metrics and /healthz on http://%s\n", l.Addr())

	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 0; count == 0 || n < count; {
		select {
		case <-ctx.Done():
			return nil
		case id := <-handled:
			n++
			fmt.Printf("handled %s\n", id)
		case <-tick.C:
			m, err := bus.Encode("observability.tick", map[string]string{"at": time.Now().UTC().Format(time.RFC3339Nano)}, nil)
			if err != nil {
				return err
			}
			if err := pub.Publish(ctx, topic, m); err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "publish:", err)
			}
		}
	}
	return nil
}
