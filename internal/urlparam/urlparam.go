// Package urlparam parses adapter settings from URL query parameters, with
// typed getters that collect errors and a final check that rejects any
// parameter nobody asked for.
package urlparam

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/busline/bus"
)

// Params reads one URL's query parameters. The zero value is not usable;
// call New.
type Params struct {
	pkg  string
	q    url.Values
	used map[string]bool
	errs []error
}

// New returns Params over q; pkg prefixes error messages ("amqp").
func New(pkg string, q url.Values) *Params {
	return &Params{pkg: pkg, q: q, used: map[string]bool{}}
}

func (p *Params) get(name string) (string, bool) {
	p.used[name] = true
	vs, ok := p.q[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		p.fail(name, strings.Join(vs, ","), "given more than once")
	}
	return vs[0], true
}

func (p *Params) fail(name, value, why string) {
	if l := strings.ToLower(name); strings.Contains(l, "password") || strings.Contains(l, "secret") {
		value = "xxxxx"
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %w: URL parameter %s=%q: %s", p.pkg, bus.ErrInvalid, name, value, why))
}

// String sets *dst to the parameter's value when present.
func (p *Params) String(name string, dst *string) {
	if v, ok := p.get(name); ok {
		*dst = v
	}
}

// Enum is String restricted to the allowed values.
func (p *Params) Enum(name string, dst *string, allowed ...string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	if !slices.Contains(allowed, v) {
		p.fail(name, v, "want one of "+strings.Join(allowed, ", "))
		return
	}
	*dst = v
}

// Int sets *dst to the parameter parsed as an integer no less than min.
func (p *Params) Int(name string, dst *int, min int) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "not an integer")
		return
	}
	if n < min {
		p.fail(name, v, fmt.Sprintf("must be at least %d", min))
		return
	}
	*dst = n
}

// Bool sets *dst to the parameter parsed by strconv.ParseBool.
func (p *Params) Bool(name string, dst *bool) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "not a boolean (true or false)")
		return
	}
	*dst = b
}

// Duration sets *dst to the parameter parsed by time.ParseDuration; it must
// not be negative.
func (p *Params) Duration(name string, dst *time.Duration) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, v, "not a duration such as 250ms or 5s")
		return
	}
	if d < 0 {
		p.fail(name, v, "must not be negative")
		return
	}
	*dst = d
}

// File sets *dst to a path that must name a readable file.
func (p *Params) File(name string, dst *string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	if _, err := os.Stat(v); err != nil {
		p.fail(name, v, "cannot read file: "+errors.Unwrap(err).Error())
		return
	}
	*dst = v
}

// Err returns every error met so far, plus one for each parameter that no
// getter asked for (listing the known ones), or nil.
func (p *Params) Err() error {
	var unknown []string
	for k := range p.q {
		if !p.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		known := make([]string, 0, len(p.used))
		for k := range p.used {
			known = append(known, k)
		}
		slices.Sort(known)
		p.errs = append(p.errs, fmt.Errorf("%s: %w: unknown URL parameter(s) %s (known: %s)",
			p.pkg, bus.ErrInvalid, strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	return errors.Join(p.errs...)
}
