package kafka

import "sync"

// partition tracks the messages of one partition read in one generation
// (or by one broadcast subscription): which are in flight, which have
// finished and which are committed, so that the commit position only ever
// advances over a contiguous run of finished offsets, and reading pauses
// while max messages are read and not committed.
type partition struct {
	id      int
	start   int64 // where reading starts (an offset, or kafka-go's FirstOffset/LastOffset)
	commits bool  // false: nothing is committed (broadcast); a finished message leaves at once
	max     int   // most messages read and not committed

	inflight sync.WaitGroup // jobs submitted and not finished

	mu   sync.Mutex
	q    []*entry // read and not yet committed, in offset order
	fin  int      // q[:fin] have finished: the contiguous finished run
	pos  int64    // offset after the last contiguous finished one; -1: none
	done int64    // the last position committed; -1: none
	room chan struct{}
}

type entry struct {
	off      int64
	finished bool
}

// newPartition starts tracking partition id from offset start; committed
// says start is already the group's committed position, commits that the
// subscription commits offsets (a group member), and limit caps the
// messages read and not committed.
func newPartition(id int, start int64, committed, commits bool, limit int) *partition {
	p := &partition{id: id, start: start, commits: commits, max: max(limit, 1), pos: -1, done: -1,
		room: make(chan struct{}, 1)}
	if start >= 0 {
		p.pos = start
		if committed {
			p.done = start
		}
	}
	return p
}

// waitRoom waits until fewer than max messages are read and not committed,
// or done is closed; it reports whether there is room, and calls parked
// (when not nil) each time it has to wait. Only the partition's one reader
// adds messages, so the room it saw stays until it reads.
func (p *partition) waitRoom(done <-chan struct{}, parked func()) bool {
	for {
		p.mu.Lock()
		n := len(p.q)
		p.mu.Unlock()
		if n < p.max {
			return true
		}
		if parked != nil {
			parked()
		}
		// room is sent to whenever messages leave q, after they left.
		select {
		case <-p.room:
		case <-done:
			return false
		}
	}
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
// the finished run.
func (p *partition) finish(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.finished = true
	for p.fin < len(p.q) && p.q[p.fin].finished {
		p.pos = p.q[p.fin].off + 1
		p.fin++
	}
	if !p.commits {
		p.drop(p.pos)
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
	defer p.mu.Unlock()
	if pos > p.done {
		p.done = pos
	}
	p.drop(pos)
}

// drop forgets the finished messages below pos and tells a reader waiting
// for room. p.mu is held.
func (p *partition) drop(pos int64) {
	k := 0
	for k < p.fin && p.q[k].off < pos {
		k++
	}
	if k == 0 {
		return
	}
	clear(p.q[:k])
	p.q = p.q[k:]
	p.fin -= k
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// restart forgets the messages read after the first unfinished one and
// returns its offset, where reading must start again. No job may be in
// flight.
func (p *partition) restart() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.pos
	if p.fin < len(p.q) {
		from = p.q[p.fin].off
		p.pos = from
		clear(p.q[p.fin:])
		p.q = p.q[:p.fin]
	}
	if from < 0 {
		from = p.start
	}
	return from
}

// finished returns the offset after the last contiguous finished one:
// the first unfinished one read when nothing has finished yet, -1 when
// nothing was read either.
func (p *partition) finished() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pos < 0 && len(p.q) > 0 {
		return p.q[0].off
	}
	return p.pos
}
