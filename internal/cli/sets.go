package cli

import "github.com/berthml/berth/internal/spec"

// applySets applies --set overrides to a value decoded from a model, environment, data
// or connection file (spec.ApplySets: the same rules as for endpoints and deployments).
func applySets(v any, sets []string) error { return spec.ApplySets(v, sets) }
