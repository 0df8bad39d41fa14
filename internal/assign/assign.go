// Package assign holds the rule behind every As method: bus.Message.As
// and the adapters' As through driver.AsValue.
package assign

import "reflect"

// To sets *target to v when target is a non-nil pointer to a type v is
// assignable to, and reports whether it did.
func To(v, target any) bool {
	if v == nil || target == nil {
		return false
	}
	rv := reflect.ValueOf(target)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	elem := rv.Elem()
	src := reflect.ValueOf(v)
	if !src.Type().AssignableTo(elem.Type()) {
		return false
	}
	elem.Set(src)
	return true
}
