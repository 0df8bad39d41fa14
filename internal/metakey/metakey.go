// Package metakey holds the rule for reserved metadata keys, which both
// bus.Message.Validate and driver.IsReservedKey apply.
package metakey

import "strings"

// Reserved reports whether k collides with the headers busline itself
// writes on the wire: it starts with "ce_" or "cloudEvents_", or is
// "content-type", in any case.
func Reserved(k string) bool {
	return hasPrefixFold(k, "ce_") || hasPrefixFold(k, "cloudevents_") || strings.EqualFold(k, "content-type")
}

// hasPrefixFold is strings.HasPrefix under Unicode case folding, without
// allocating.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
