//go:build !unix

package inference

import (
	"context"
	"time"
)

// StartBatchWorkers starts one interpreter per worker where Python cannot fork: each
// returned function starts its worker with StartBatchWorker.
// end does nothing: each worker is its own process.
func StartBatchWorkers(_ context.Context, cfg BatchWorkerConfig, stdio []BatchStdio) (waits []func(context.Context) (*BatchWorker, error), end func(time.Duration), err error) {
	waits = make([]func(context.Context) (*BatchWorker, error), len(stdio))
	for i, s := range stdio {
		c := cfg
		c.Stdout, c.Stderr = s.Stdout, s.Stderr
		waits[i] = func(ctx context.Context) (*BatchWorker, error) { return StartBatchWorker(ctx, c) }
	}
	return waits, func(time.Duration) {}, nil
}
