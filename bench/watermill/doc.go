// Package watermill holds benchmarks, run by hand, that put busline next to
// Watermill (github.com/ThreeDotsLabs/watermill) on the same brokers in one
// run. It is a separate module so that Watermill and its dependencies never
// enter busline's own go.mod. See README.md for the method and the numbers.
package watermill
