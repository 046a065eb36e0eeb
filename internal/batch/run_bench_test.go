//go:build unix

package batch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRun runs a job of 10,000 small files (mini-batches of 10, 2 workers) with
// bench/batch's trivial score.py: the batch machinery's own cost, without the server.
// bench/batch compares the whole job with a multiprocessing.Pool.
func BenchmarkRun(b *testing.B) {
	t := &testing.T{}
	script, err := os.ReadFile("../../bench/batch/score.py")
	if err != nil {
		b.Fatal(err)
	}
	f := newFixture(t, 10000, string(script))
	f.job.Settings.MaxConcurrencyPerInstance = 2
	root := filepath.Dir(f.job.Dir)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(root)
		os.RemoveAll(f.job.OutputDir)
		b.StartTimer()
		res, err := Run(context.Background(), f.job)
		if err != nil || res.Status != StatusCompleted {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}
