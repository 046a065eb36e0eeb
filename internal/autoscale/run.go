package autoscale

import (
	"context"
	"fmt"
	"time"
)

// Run polls sample every PollingInterval of settings (defaults applied), decides
// with a Decider, calls scale when the desired count differs from the sample's,
// and passes every decision to log (with Err set when scale failed; the next poll
// decides again from a fresh sample). It decides once at start, so a count
// outside [min, max] is clamped at once, and returns ctx.Err() when ctx ends.
//
// Run does not validate settings: callers run Settings.Validate on user input
// (tests use polling intervals under a second).
func Run(ctx context.Context, settings Settings, sample func() Sample, scale func(ctx context.Context, n int) error, log func(Decision)) error {
	d := NewDecider(settings)
	t := time.NewTicker(d.Settings().PollingInterval)
	defer t.Stop()
	now := time.Now()
	for {
		dec := d.Decide(now, sample())
		if dec.Changed() {
			if err := scale(ctx, dec.Replicas); err != nil {
				dec.Err = fmt.Errorf("scale to %d replicas: %w", dec.Replicas, err)
			}
		}
		log(dec)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now = <-t.C:
		}
	}
}
