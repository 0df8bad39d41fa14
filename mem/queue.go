package mem

import (
	"context"
	"sync"

	"github.com/busline/bus"
)

// queue holds the messages waiting for one group or one broadcast
// subscriber. Members pull from it; a message whose key is being handled
// is passed over until that key is settled, which keeps each key in order
// across every member and worker.
type queue struct {
	mu       sync.Mutex
	cond     sync.Cond
	items    []*bus.Message
	inflight map[string]int // keys with a message in a handler
	members  int            // running subscriptions (groups only)
}

func newQueue() *queue {
	q := &queue{inflight: map[string]int{}}
	q.cond.L = &q.mu
	return q
}

func (q *queue) push(m *bus.Message) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a message whose key is free and takes it, or returns nil
// once ctx is done. The caller must call wake when ctx ends.
func (q *queue) pop(ctx context.Context) *bus.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return nil
		}
		for i, m := range q.items {
			if m.Key != "" && q.inflight[m.Key] > 0 {
				continue
			}
			if i == 0 {
				q.items[0] = nil
				q.items = q.items[1:]
			} else {
				q.items = append(q.items[:i], q.items[i+1:]...)
			}
			if m.Key != "" {
				q.inflight[m.Key]++
			}
			return m
		}
		q.cond.Wait()
	}
}

// settle ends a handling: an abandoned message goes back to the head of the
// queue, flagged as redelivered, so that it keeps its place in key order.
func (q *queue) settle(m *bus.Message, requeue bool) {
	q.mu.Lock()
	if m.Key != "" {
		if q.inflight[m.Key]--; q.inflight[m.Key] == 0 {
			delete(q.inflight, m.Key)
		}
	}
	if requeue {
		m.Delivery.Redelivered = true
		m.Delivery.DeliveryCount++
		q.items = append([]*bus.Message{m}, q.items...)
	}
	q.mu.Unlock()
	q.cond.Broadcast()
}

// wake releases every pop so that callers whose context ended return.
func (q *queue) wake() {
	q.mu.Lock()
	q.mu.Unlock() //nolint:staticcheck // the lock orders this after a waiter's ctx check
	q.cond.Broadcast()
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
