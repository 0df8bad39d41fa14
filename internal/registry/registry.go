// Package registry is the table of URL schemes: package driver fills it
// (driver.Register) and package bus reads it (bus.OpenPublisher,
// bus.Schemes). It sits below both because driver imports bus, so bus
// cannot import driver. It stores openers as any: driver.Register takes
// only a driver.Opener, and bus asserts the two methods it calls.
package registry

import (
	"slices"
	"sync"
)

var table = struct {
	sync.RWMutex
	m map[string]any
}{m: map[string]any{}}

// Add stores o under scheme and reports whether it did: false when the
// scheme is taken.
func Add(scheme string, o any) bool {
	table.Lock()
	defer table.Unlock()
	if _, dup := table.m[scheme]; dup {
		return false
	}
	table.m[scheme] = o
	return true
}

// Lookup returns what is stored under scheme.
func Lookup(scheme string) (any, bool) {
	table.RLock()
	defer table.RUnlock()
	o, ok := table.m[scheme]
	return o, ok
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	table.RLock()
	defer table.RUnlock()
	s := make([]string, 0, len(table.m))
	for k := range table.m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}
