package mem

import (
	"context"
	"sync"

	"github.com/busline/bus"
)

// queue holds the messages waiting for one group or one broadcast
// subscriber. Members pull from it. A key has at most one message that
// can be taken (ready) or is being handled; the key's later messages wait
// behind it and become ready, in order, as it is settled. That keeps each
// key in order across every member and worker, and taking a message is
// constant time however many messages of a busy key wait.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond
	ready   []*bus.Message            // messages that may be taken, oldest first
	busy    map[string]bool           // keys with a message ready or in a handler
	waiting map[string][]*bus.Message // per busy key, its later messages
	pending int                       // messages not yet taken
	members int                       // running subscriptions (groups only)
}

func newQueue() *queue {
	q := &queue{busy: map[string]bool{}, waiting: map[string][]*bus.Message{}}
	q.cond.L = &q.mu
	return q
}

func (q *queue) push(m *bus.Message) {
	q.mu.Lock()
	q.pending++
	switch {
	case m.Key == "":
		q.ready = append(q.ready, m)
	case q.busy[m.Key]:
		q.waiting[m.Key] = append(q.waiting[m.Key], m)
		q.mu.Unlock()
		return // nothing new can be taken
	default:
		q.busy[m.Key] = true
		q.ready = append(q.ready, m)
	}
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a message that may be taken and takes it, or returns nil
// once ctx is done. The caller must call wake when ctx ends.
func (q *queue) pop(ctx context.Context) *bus.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if len(q.ready) > 0 {
			m := q.ready[0]
			q.ready[0] = nil
			q.ready = q.ready[1:]
			q.pending--
			return m
		}
		q.cond.Wait()
	}
}

// settle ends a handling. An abandoned message goes back to the head of
// the queue, flagged as redelivered, and keeps its key busy, so that it
// keeps its place in key order; otherwise the key's next message, if any,
// becomes ready.
func (q *queue) settle(m *bus.Message, requeue bool) {
	q.mu.Lock()
	switch {
	case requeue:
		m.Delivery.Redelivered = true
		m.Delivery.DeliveryCount++
		q.ready = append([]*bus.Message{m}, q.ready...)
		q.pending++
	case m.Key == "":
		q.mu.Unlock()
		return // nothing became ready
	default:
		if next := q.waiting[m.Key]; len(next) > 0 {
			q.ready = append(q.ready, next[0])
			next[0] = nil
			if len(next) == 1 {
				delete(q.waiting, m.Key)
			} else {
				q.waiting[m.Key] = next[1:]
			}
		} else {
			delete(q.busy, m.Key)
			q.mu.Unlock()
			return
		}
	}
	q.mu.Unlock()
	q.cond.Signal()
}

// wake releases every pop so that callers whose context ended return.
func (q *queue) wake() {
	// Taking the lock orders the broadcast after any waiter's ctx check,
	// so that no waiter misses it.
	q.mu.Lock()
	//lint:ignore SA2001 the empty critical section is the point
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}
