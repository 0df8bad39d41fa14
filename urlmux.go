package bus

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/busline/bus/internal/registry"
)

// opener is what driver.Register stores: a driver.Opener, which package
// bus cannot name because driver imports bus.
type opener interface {
	OpenPublisher(ctx context.Context, u *url.URL) (Publisher, error)
	OpenSubscriber(ctx context.Context, u *url.URL) (Subscriber, error)
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string { return registry.Schemes() }

func lookup(rawURL string) (opener, *url.URL, error) {
	if rawURL == "" {
		return nil, nil, fmt.Errorf("bus: %w: empty broker URL (set $%s, or pass a URL such as mem:// for the in-process broker)",
			ErrInvalid, EnvURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: %w: cannot parse URL %q (want scheme://host/..., registered schemes: %s)",
			ErrInvalid, RedactURL(rawURL), strings.Join(Schemes(), ", "))
	}
	if u.Scheme == "" {
		return nil, nil, fmt.Errorf("bus: %w: URL %q has no scheme (want one of %s)", ErrInvalid, RedactURL(rawURL), strings.Join(Schemes(), ", "))
	}
	v, _ := registry.Lookup(u.Scheme)
	o, ok := v.(opener)
	if !ok {
		return nil, nil, fmt.Errorf("bus: %w: unknown URL scheme %q (registered: %s; forgotten import of the adapter package?)",
			ErrInvalid, u.Scheme, strings.Join(Schemes(), ", "))
	}
	return o, u, nil
}

// OpenPublisher opens a Publisher for the broker the URL names, using the
// adapter registered for its scheme (import the adapter package, perhaps
// as _, to register it). Unknown schemes and URL parameters are errors.
func OpenPublisher(ctx context.Context, rawURL string) (Publisher, error) {
	o, u, err := lookup(rawURL)
	if err != nil {
		return nil, err
	}
	p, err := o.OpenPublisher(ctx, u)
	if err != nil {
		// An adapter's constructor returns a typed nil with its error;
		// callers get a nil interface.
		return nil, err
	}
	return p, nil
}

// OpenSubscriber opens a Subscriber for the broker the URL names; see
// OpenPublisher.
func OpenSubscriber(ctx context.Context, rawURL string) (Subscriber, error) {
	o, u, err := lookup(rawURL)
	if err != nil {
		return nil, err
	}
	sub, err := o.OpenSubscriber(ctx, u)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// EnvURL is the environment variable URLFromEnv reads.
const EnvURL = "BUS_URL"

// URLFromEnv returns $BUS_URL, or fallback when it is unset or empty. The
// fallback is written where it is used: a demo or test passes "mem://"
// (the in-process broker; import github.com/busline/bus/mem), a production
// service passes "", so that a missing BUS_URL makes OpenPublisher and
// OpenSubscriber fail with an error naming it instead of publishing into
// process memory without a word.
func URLFromEnv(fallback string) string {
	if s := os.Getenv(EnvURL); s != "" {
		return s
	}
	return fallback
}

// RedactURL returns rawURL with any password replaced by "xxxxx", for use in
// errors and logs; query parameters whose names contain "password" or
// "secret" are masked too. In text that does not parse as a URL, whatever
// stands before an '@' is masked, since it might hold a password.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Only user info can hold a password: hide everything before the
		// last '@' of the authority, keep the rest to help the reader.
		if at := strings.LastIndex(rawURL, "@"); at >= 0 {
			start := 0
			if i := strings.Index(rawURL, "://"); i >= 0 && i < at {
				start = i + 3
			}
			return rawURL[:start] + "xxxxx" + rawURL[at:]
		}
		return rawURL
	}
	changed := false
	if _, has := u.User.Password(); has {
		changed = true
	}
	if q := u.Query(); len(q) > 0 {
		secretQuery := false
		for k := range q {
			if l := strings.ToLower(k); strings.Contains(l, "password") || strings.Contains(l, "secret") {
				q.Set(k, "xxxxx")
				secretQuery = true
			}
		}
		if secretQuery {
			u.RawQuery = q.Encode()
			changed = true
		}
	}
	if !changed {
		return rawURL // nothing secret: keep the text as the user wrote it
	}
	return u.Redacted()
}
