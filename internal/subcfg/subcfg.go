// Package subcfg is the value bus.SubscribeOption sets. Package bus writes
// it through its options (Group, Concurrency, Retry...); package driver
// reads it in NewSubscribeConfig and hands adapters a driver.SubscribeConfig
// of its own. It sits below both because driver imports bus, so bus cannot
// import driver; its type parameters let it hold bus's types without
// importing bus. Both packages name the one instance
// Options[bus.StartPosition, bus.RetryPolicy, bus.Middleware].
package subcfg

import "log/slog"

// Options is what a Subscribe call's options set; see
// driver.SubscribeConfig for the meaning of each field.
type Options[Start, Retry, Middleware any] struct {
	Group       string
	Concurrency int
	Ready       func()
	Start       Start
	Retry       Retry
	DeadLetter  string
	Logger      *slog.Logger
	Middleware  []Middleware
}
