// Package ctxkeep keeps a context and makes its own, which Check must report.
package ctxkeep

import "context"

// Worker keeps a context.
type Worker struct {
	ctx context.Context
}

// New makes a context instead of taking the caller's.
func New() *Worker { return &Worker{ctx: context.Background()} }
