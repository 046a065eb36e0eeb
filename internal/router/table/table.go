// Package table owns the immutable routing snapshot the router reads: endpoints, their
// keys and traffic, and the ready instances of each deployment.
package table

import (
	"sync/atomic"
	"time"
)

// Table is a routing snapshot. It is never changed after it is published.
type Table struct {
	Endpoints map[string]*Endpoint
}

// Endpoint is one endpoint in the snapshot.
type Endpoint struct {
	Name        string
	AuthMode    string
	Keys        []string
	Deployments map[string]*Deployment
	Traffic     map[string]int // deployment → percent, sum 0 or 100
	Mirror      map[string]int // at most one entry
}

// Deployment is one deployment in the snapshot.
type Deployment struct {
	Name           string
	Instances      []*Instance // ready instances only
	RequestTimeout time.Duration
	next           atomic.Uint32 // round-robin start for instance choice
}

// Instance is one ready instance. The same *Instance may appear in several snapshots.
type Instance struct {
	Addr     string
	InFlight atomic.Int64 // requests being served now, kept by the router
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
