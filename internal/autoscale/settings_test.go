package autoscale

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Settings
		want Settings
	}{
		{"all unset", Settings{}, Settings{MinInstances: 1, MaxInstances: 1, TargetUtilizationPercentage: 70, PollingInterval: time.Second}},
		{"set fields kept", Settings{MinInstances: 3, MaxInstances: 15, TargetUtilizationPercentage: 50, PollingInterval: 10 * time.Second},
			Settings{MinInstances: 3, MaxInstances: 15, TargetUtilizationPercentage: 50, PollingInterval: 10 * time.Second}},
		// Azure's default max_instances is 1 whatever min_instances says; Validate reports it.
		{"max not raised to min", Settings{MinInstances: 2}, Settings{MinInstances: 2, MaxInstances: 1, TargetUtilizationPercentage: 70, PollingInterval: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.in.Defaults()); diff != "" {
				t.Errorf("Defaults() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScaleDownDelay(t *testing.T) {
	if got := (Settings{}).Defaults().ScaleDownDelay(); got != 20*time.Second {
		t.Errorf("default ScaleDownDelay = %v, want 20s", got)
	}
	if got := (Settings{PollingInterval: 10 * time.Second}).ScaleDownDelay(); got != 200*time.Second {
		t.Errorf("ScaleDownDelay with polling 10s = %v, want 200s", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   Settings
		want []string // one line per problem, in order
	}{
		{"defaults are valid", Settings{}.Defaults(), nil},
		{"green example", Settings{MinInstances: 1, MaxInstances: 3, TargetUtilizationPercentage: 70, PollingInterval: 10 * time.Second}, nil},
		{"target 100 and min = max", Settings{MinInstances: 2, MaxInstances: 2, TargetUtilizationPercentage: 100, PollingInterval: time.Second}, nil},
		{"max below min", Settings{MinInstances: 3}.Defaults(), []string{
			"scale_settings.max_instances: must be at least min_instances (3), got 1; raise max_instances or lower min_instances (max_instances defaults to 1)"}},
		{"everything wrong", Settings{MinInstances: -1, MaxInstances: -2, TargetUtilizationPercentage: 101, PollingInterval: 500 * time.Millisecond}, []string{
			"scale_settings.min_instances: must be at least 1, got -1; set it to 1 or more (or leave it out for the default 1)",
			"scale_settings.max_instances: must be at least 1, got -2; set it to 1 or more (or leave it out for the default 1)",
			"scale_settings.target_utilization_percentage: must be between 1 and 100, got 101; set a percentage such as 70 (the default)",
			"scale_settings.polling_interval: must be at least 1 second, got 500ms; set it to 1 or more (seconds)",
		}},
		{"negative target", Settings{MinInstances: 1, MaxInstances: 1, TargetUtilizationPercentage: -5, PollingInterval: time.Second}, []string{
			"scale_settings.target_utilization_percentage: must be between 1 and 100, got -5; set a percentage such as 70 (the default)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := tt.in.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
