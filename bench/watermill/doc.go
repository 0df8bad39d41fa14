// Package watermill holds benchmarks, run by hand, that put busline next to
// Watermill (github.com/ThreeDotsLabs/watermill) on the same brokers in one
// run, and, on Redis, where Watermill has no pub/sub adapter, next to
// rueidis (github.com/redis/rueidis). It is a separate module so that those
// libraries and their dependencies never enter busline's own go.mod. See
// README.md for the method and the numbers.
package watermill
