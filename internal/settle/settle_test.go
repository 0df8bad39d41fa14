package settle

import (
	"errors"
	"testing"
)

func TestOnce(t *testing.T) {
	var o Once
	n := 0
	if err := o.Do(func() error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := o.Do(func() error { n++; return nil }); !errors.Is(err, ErrSettled) || n != 1 || !o.Settled() {
		t.Fatalf("second settle: %v, %d runs", err, n)
	}
}
