// Package settle makes acknowledging a delivery a once-only act: the first
// Ack or Nack wins, later ones are refused instead of reaching the broker
// (where a second ack on AMQP closes the channel) or panicking.
package settle

import (
	"errors"
	"sync/atomic"
)

// ErrSettled is returned for a second settlement of one delivery.
var ErrSettled = errors.New("settle: delivery already settled")

// Once is the settlement state of one delivery. The zero value is pending.
type Once struct{ done atomic.Bool }

// Do runs settle if nothing settled the delivery before, and returns its
// error; otherwise it returns ErrSettled without running it.
func (o *Once) Do(settle func() error) error {
	if !o.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	return settle()
}

// Settled reports whether the delivery was settled.
func (o *Once) Settled() bool { return o.done.Load() }
