package examples

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestObservability: the observability example serves Prometheus metrics
// that count what it published and handled, and a /healthz that answers
// 200 "live", on the in-process broker and on Redis.
func TestObservability(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"mem://", redisURL} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			t.Parallel()
			p := start(t, "observability", "observability", nil,
				"-url", url, "-topic", unique("obs"), "-addr", "127.0.0.1:0", "-every", "20ms", "-spans=false")
			var base string
			p.WaitUntil(wait, "the address it serves on", func(lines []string) bool {
				for _, l := range lines {
					if i := strings.Index(l, "http://"); strings.HasPrefix(l, "serving ") && i >= 0 {
						base = l[i:]
						return true
					}
				}
				return false
			})
			p.WaitUntil(wait, "three handled events", func(lines []string) bool {
				n := 0
				for _, l := range lines {
					if strings.HasPrefix(l, "handled ") {
						n++
					}
				}
				return n >= 3
			})
			metrics := get(t, base+"/metrics", http.StatusOK)
			for _, name := range []string{"messaging_client_sent_messages", "messaging_client_consumed_messages",
				"messaging_process_duration", "busline_process_outcomes", `busline_client_health{busline_client="subscriber",busline_health_state="live"`} {
				if !strings.Contains(metrics, name) {
					t.Errorf("/metrics lacks %s", name)
				}
			}
			if body := get(t, base+"/healthz", http.StatusOK); strings.TrimSpace(body) != "live" {
				t.Errorf("/healthz said %q", body)
			}
		})
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}
