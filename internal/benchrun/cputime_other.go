//go:build !unix

package benchrun

import "time"

// CPUTime is not measured on this system: it returns 0, and CPU metrics
// computed from it read 0.
func CPUTime() time.Duration { return 0 }
