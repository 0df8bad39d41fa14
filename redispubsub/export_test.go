package redispubsub

// CoalesceStats returns, for p's single-message publishes so far, how many
// were sent alone, how many went through the flushers, and in how many
// round trips the latter went.
func CoalesceStats(p *Publisher) (alone, queued, trips int64) {
	return p.co.sentAlone.Load(), p.co.queued.Load(), p.co.sends.Load()
}
