// Package table owns the immutable routing snapshot the router reads: endpoints, their
// keys and traffic, and the ready instances of each deployment.
package table

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Table is a routing snapshot. It is never changed after it is published.
type Table struct {
	Endpoints map[string]*Endpoint
}

// Auth modes of an endpoint, spelled as in the endpoint YAML.
const (
	AuthKey      = "key"       // Authorization: Bearer <primary or secondary key>
	AuthAMLToken = "aml_token" // a token of this endpoint (get-credentials)
	AuthAADToken = "aad_token" // an access token of the admin identity (account get-access-token)
	// AuthNone takes every request, with or without an Authorization header (which it
	// ignores): local endpoints (`--local`), as Azure's local endpoints do.
	AuthNone = "none"
)

// Endpoint is one endpoint in the snapshot.
type Endpoint struct {
	Name string
	// AuthMode is AuthKey, AuthAMLToken, AuthAADToken or AuthNone; "" is AuthKey.
	AuthMode string
	// Keys are accepted only when AuthMode is AuthKey.
	Keys        []string
	Deployments map[string]*Deployment
	Traffic     map[string]int // deployment → percent, sum 0 or 100
	Mirror      map[string]int // at most one entry
	// Policy, when not nil, turns the statuses the router answers with (a managed
	// endpoint's) into those of the endpoint's compute (KubernetesPolicy).
	Policy *ResponsePolicy
}

// Deployment is one deployment in the snapshot.
type Deployment struct {
	Name           string
	Instances      []*Instance // ready instances only
	RequestTimeout time.Duration
	// MaxConcurrent is request_settings.max_concurrent_requests_per_instance (0 = 1).
	MaxConcurrent int
	// MaxQueueWait is how long a request may wait for a free slot on an instance (0 = until its timeout).
	MaxQueueWait time.Duration
	// Gate counts the deployment's requests in flight; the publisher passes the same
	// Gate in every snapshot so the count survives swaps (nil = no admission limit).
	Gate *Gate
	next atomic.Uint32 // round-robin start for instance choice
}

// Gate is the in-flight counter of one deployment.
type Gate struct {
	InFlight atomic.Int64
}

// Instance is one ready instance. The same *Instance may appear in several snapshots.
type Instance struct {
	// Handler serves an instance that runs in this process; when it is nil the
	// instance is reached over HTTP at Addr.
	Handler http.Handler
	// Addr is the host:port of an instance reached over HTTP; for an in-process one it
	// only names the instance in status output ("" is fine).
	Addr     string
	InFlight atomic.Int64 // requests being served now, kept by the router
	// Slots holds one token per request the instance may run at once; nil = unlimited.
	// Make it with NewInstance.
	Slots chan struct{}
}

// NewInstance returns an instance entry that runs at most concurrent requests at once.
func NewInstance(addr string, concurrent int) *Instance {
	return &Instance{Addr: addr, Slots: make(chan struct{}, max(concurrent, 1))}
}

// Pick returns the instance with the fewest requests in flight, starting the scan at a
// rotating offset so ties spread round-robin; nil when there is none.
func (d *Deployment) Pick() *Instance {
	n := len(d.Instances)
	switch n {
	case 0:
		return nil
	case 1:
		return d.Instances[0]
	}
	start := int(d.next.Add(1)) % n
	best := d.Instances[start]
	for i := 1; i < n; i++ {
		in := d.Instances[(start+i)%n]
		if in.InFlight.Load() < best.InFlight.Load() {
			best = in
		}
	}
	return best
}

// Choose maps r, uniform in [0, 100), to a deployment by the traffic weights; "" when
// no deployment has weight. Deployments are visited in a fixed order (sorted names) so
// equal inputs give equal outputs.
func (e *Endpoint) Choose(r int, order []string) string {
	acc := 0
	for _, name := range order {
		acc += e.Traffic[name]
		if r < acc {
			return name
		}
	}
	return ""
}
