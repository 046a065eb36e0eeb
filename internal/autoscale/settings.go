// Package autoscale decides how many replicas an online deployment runs, the way
// azureml-fe's autoscaler does for Kubernetes online deployments (spec §2.3,
// scale_settings type target_utilization):
//
//	utilization = (replicas busy + requests queued) / current replicas
//
// Above the target utilization the count rises at once (eager scale-up); below it
// the count falls only after utilization has stayed below the target for
// ScaleDownDelay (20 polling intervals), then one replica per polling interval
// (conservative scale-down). A count outside [min, max] is clamped at once.
//
// The package is pure and imports nothing else from Berth: a Decider turns samples
// into Decisions with the time passed in, and Run polls a sampler, applies the
// decisions through a scale function and logs every one of them with its inputs.
// It serves both runtimes: process instances on one machine and Deployment
// replicas on Kubernetes.
package autoscale

import (
	"errors"
	"fmt"
	"time"
)

// Documented defaults of scale_settings (type target_utilization) [spec §2.3, D:kdep].
const (
	DefaultMinInstances                = 1
	DefaultMaxInstances                = 1
	DefaultTargetUtilizationPercentage = 70
	DefaultPollingInterval             = time.Second
)

// ScaleDownFactor is how many polling intervals utilization must stay below the
// target before a replica is removed: azureml-fe's scale-down is "conservative,
// ~20× the scale-up refresh interval" (spec §2.3). With the default 1 s polling
// interval that is 20 s.
const ScaleDownFactor = 20

// Settings is scale_settings of type target_utilization. Zero fields mean "not
// set"; Defaults fills them in. The YAML gives polling_interval in seconds; the
// caller converts it to a Duration.
type Settings struct {
	MinInstances                int
	MaxInstances                int
	TargetUtilizationPercentage int
	PollingInterval             time.Duration
}

// Defaults returns s with every unset (zero) field set to its documented
// default: min_instances 1, max_instances 1, target_utilization_percentage 70,
// polling_interval 1 s. Like Azure, it does not raise max_instances to a larger
// min_instances: Validate reports that instead.
func (s Settings) Defaults() Settings {
	if s.MinInstances == 0 {
		s.MinInstances = DefaultMinInstances
	}
	if s.MaxInstances == 0 {
		s.MaxInstances = DefaultMaxInstances
	}
	if s.TargetUtilizationPercentage == 0 {
		s.TargetUtilizationPercentage = DefaultTargetUtilizationPercentage
	}
	if s.PollingInterval == 0 {
		s.PollingInterval = DefaultPollingInterval
	}
	return s
}

// ScaleDownDelay is how long utilization must stay below the target before the
// first replica is removed: ScaleDownFactor polling intervals.
func (s Settings) ScaleDownDelay() time.Duration {
	return ScaleDownFactor * s.PollingInterval
}

// Validate reports every problem of s at once, each naming its YAML field and the
// fix. Call it after Defaults.
//
// min_instances must be at least 1: Azure documents 1 as the default and no
// scale-to-zero for Kubernetes online deployments, and utilization is measured
// per running replica, so a deployment with none could never be measured.
func (s Settings) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("scale_settings.%s: "+format, append([]any{field}, args...)...))
	}
	if s.MinInstances < 1 {
		add("min_instances", "must be at least 1, got %d; set it to 1 or more (or leave it out for the default 1)", s.MinInstances)
	}
	if s.MaxInstances < 1 {
		add("max_instances", "must be at least 1, got %d; set it to 1 or more (or leave it out for the default 1)", s.MaxInstances)
	} else if s.MaxInstances < s.MinInstances {
		add("max_instances", "must be at least min_instances (%d), got %d; raise max_instances or lower min_instances (max_instances defaults to 1)", s.MinInstances, s.MaxInstances)
	}
	if t := s.TargetUtilizationPercentage; t < 1 || t > 100 {
		add("target_utilization_percentage", "must be between 1 and 100, got %d; set a percentage such as 70 (the default)", t)
	}
	if s.PollingInterval < time.Second {
		add("polling_interval", "must be at least 1 second, got %v; set it to 1 or more (seconds)", s.PollingInterval)
	}
	return errors.Join(errs...)
}
