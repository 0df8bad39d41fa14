package kafka

import "sync"

// partition tracks the messages of one partition read in one generation:
// which are in flight and which have finished, so that the commit position
// only ever advances over a contiguous run of finished offsets.
type partition struct {
	id    int
	start int64 // where reading starts (an offset, or kafka-go's FirstOffset/LastOffset)

	inflight sync.WaitGroup // jobs submitted and not finished

	mu   sync.Mutex
	q    []*entry // read and not yet contiguous-finished, in offset order
	pos  int64    // offset after the last contiguous finished one; -1: none
	done int64    // the last position committed; -1: none
}

type entry struct {
	off      int64
	finished bool
}

// newPartition starts tracking partition id from offset start; committed
// says start is already the group's committed position.
func newPartition(id int, start int64, committed bool) *partition {
	p := &partition{id: id, start: start, pos: -1, done: -1}
	if start >= 0 {
		p.pos = start
		if committed {
			p.done = start
		}
	}
	return p
}

// add records that the message at off was read and is about to be handled.
func (p *partition) add(off int64) *entry {
	e := &entry{off: off}
	p.mu.Lock()
	p.q = append(p.q, e)
	p.mu.Unlock()
	return e
}

// finish marks e handled (or dead-lettered) and advances the position over
// the finished prefix.
func (p *partition) finish(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.finished = true
	i := 0
	for i < len(p.q) && p.q[i].finished {
		p.pos = p.q[i].off + 1
		i++
	}
	if i > 0 {
		n := copy(p.q, p.q[i:])
		clear(p.q[n:])
		p.q = p.q[:n]
	}
}

// toCommit returns the position to commit when it moved since the last
// commit.
func (p *partition) toCommit() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos, p.pos >= 0 && p.pos != p.done
}

// committed records that pos was committed.
func (p *partition) committed(pos int64) {
	p.mu.Lock()
	if pos > p.done {
		p.done = pos
	}
	p.mu.Unlock()
}

// restart forgets the messages read after the first unfinished one and
// returns its offset, where reading must start again. No job may be in
// flight.
func (p *partition) restart() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.pos
	if len(p.q) > 0 {
		from = p.q[0].off
		p.pos = from
	}
	p.q = nil
	if from < 0 {
		from = p.start
	}
	return from
}
