package ce

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestSpecial checks the eight-bytes-at-a-time test against a byte loop:
// special must never miss a quote, backslash or control character.
func TestSpecial(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	check := func(w [8]byte) {
		want := false
		for _, c := range w {
			want = want || isSpecial(c)
		}
		if got := special(binary.LittleEndian.Uint64(w[:])) != 0; got != want {
			t.Fatalf("special(%q) = %v, want %v", w[:], got, want)
		}
	}
	for c := 0; c < 256; c++ { // every byte value at every position among ordinary and high bytes
		for pos := 0; pos < 8; pos++ {
			for _, fill := range []byte{'a', 0x20, 0x7f, 0x80, 0xff, '"' + 1, '\\' + 1, '"' - 1, '\\' - 1} {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check([8]byte(binary.LittleEndian.AppendUint64(nil, r.Uint64())))
	}
}
