// Package python owns the stdlib-only Python worker that runs a scoring script, embedded
// into the berth binary.
package python

import _ "embed"

// Worker is the source of worker.py.
//
//go:embed worker.py
var Worker string

// MLflow is the source of mlflow_score.py, the scoring script of no-code MLflow deployments.
//
//go:embed mlflow_score.py
var MLflow string
