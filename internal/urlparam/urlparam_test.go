package urlparam

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/busline/bus"
)

func TestParams(t *testing.T) {
	q, _ := url.ParseQuery("n=3&d=250ms&b=true&e=quorum&s=x&f=/etc/hostname")
	p := New("x", q)
	var (
		n    int
		d    time.Duration
		b    bool
		e, s string
		f    string
	)
	p.Int("n", &n, 1)
	p.Duration("d", &d)
	p.Bool("b", &b)
	p.Enum("e", &e, "classic", "quorum")
	p.String("s", &s)
	p.File("f", &f)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3 || d != 250*time.Millisecond || !b || e != "quorum" || s != "x" || f != "/etc/hostname" {
		t.Fatalf("got %v %v %v %v %v %v", n, d, b, e, s, f)
	}
}

func TestParamErrors(t *testing.T) {
	q, _ := url.ParseQuery("n=x&d=-1s&b=maybe&e=other&f=/nonexistent&unknown=1&sasl_password=hunter2")
	p := New("x", q)
	var n int
	var d time.Duration
	var b bool
	var e, f, pw string
	p.Int("n", &n, 1)
	p.Duration("d", &d)
	p.Bool("b", &b)
	p.Enum("e", &e, "a", "b")
	p.File("f", &f)
	p.Int("sasl_password", new(int), 0)
	_ = pw
	err := p.Err()
	if !errors.Is(err, bus.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"n=\"x\"", "negative", "boolean", "want one of a, b", "cannot read file", "unknown URL parameter(s) unknown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("password in error: %v", err)
	}
}
