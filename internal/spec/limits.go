package spec

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
)

// Ranges of the integer fields of a deployment. Azure documents instance_count (50 per
// deployment) and request_timeout_ms (180 s managed); the rest are Berth's choices,
// wide enough for any real deployment and small enough that no product of them (the
// router's admission limit 2 × max_concurrent_requests_per_instance × instance_count,
// a probe's failure_threshold × period in seconds) can overflow.
const (
	// MaxConcurrentRequestsPerInstance bounds request_settings.max_concurrent_requests_per_instance.
	MaxConcurrentRequestsPerInstance = 1000
	// MaxQueueWaitMs bounds request_settings.max_queue_wait_ms: no request waits longer
	// than the longest request timeout.
	MaxQueueWaitMs = MaxRequestTimeoutMs
	// MaxProbeSeconds bounds a probe's initial_delay, period and timeout (one hour).
	MaxProbeSeconds = 3600
	// MaxProbeThreshold bounds a probe's success_threshold and failure_threshold.
	MaxProbeThreshold = 10000
	// MaxPollingInterval bounds scale_settings.polling_interval, in seconds.
	MaxPollingInterval = 3600
	// MaxWorkerCount bounds environment_variables.WORKER_COUNT, the Python worker
	// processes of one instance.
	MaxWorkerCount = 64
	// MaxSpecFileBytes is the largest endpoint or deployment YAML file Berth reads.
	MaxSpecFileBytes = 4 << 20
)

// checkRange adds a problem when v is outside lo..hi. fix tells the user what to write.
func checkRange(p *problems, field string, v, lo, hi int, fix string) {
	if v >= lo && v <= hi {
		return
	}
	p.add(field, "must be between %d and %d, got %d: %s", lo, hi, v, fix)
}

// validateNumbers checks every integer field of a defaulted deployment against its range.
func (d *Deployment) validateNumbers(p *problems) {
	checkRange(p, "instance_count", d.InstanceCount, 1, MaxInstanceCount,
		fmt.Sprintf("Azure allows at most %d instances per deployment", MaxInstanceCount))
	rs := d.RequestSettings
	checkRange(p, "request_settings.request_timeout_ms", rs.RequestTimeoutMs, 1, MaxRequestTimeoutMs,
		fmt.Sprintf("set a number of milliseconds in that range, 180 s at most (default %d)", DefaultRequestTimeoutMs))
	checkRange(p, "request_settings.max_concurrent_requests_per_instance", rs.MaxConcurrentRequestsPerInstance, 1, MaxConcurrentRequestsPerInstance,
		"set how many requests one instance scores at once (default 1), and environment_variables.WORKER_COUNT to match")
	checkRange(p, "request_settings.max_queue_wait_ms", rs.MaxQueueWaitMs, 0, MaxQueueWaitMs,
		"the field is deprecated: leave it out, or raise request_timeout_ms instead")
	for _, pr := range []struct {
		name  string
		probe Probe
	}{{"liveness_probe", d.LivenessProbe}, {"readiness_probe", d.ReadinessProbe}} {
		seconds := fmt.Sprintf("set a number of seconds, %d (one hour) at most", MaxProbeSeconds)
		checkRange(p, pr.name+".initial_delay", pr.probe.InitialDelay, 0, MaxProbeSeconds, seconds+" (default 10)")
		checkRange(p, pr.name+".period", pr.probe.Period, 1, MaxProbeSeconds, seconds+" (default 10)")
		checkRange(p, pr.name+".timeout", pr.probe.Timeout, 1, MaxProbeSeconds, seconds+" (default 2)")
		checkRange(p, pr.name+".success_threshold", pr.probe.SuccessThreshold, 1, MaxProbeThreshold, "set a count of probes (default 1)")
		checkRange(p, pr.name+".failure_threshold", pr.probe.FailureThreshold, 1, MaxProbeThreshold,
			"set a count of probes (default 30); to wait longer for a slow init(), raise initial_delay")
	}
	if s := d.ScaleSettings; s != nil {
		// Zero means "not set" here: these fields are omitted when empty.
		instances := fmt.Sprintf("set a number of instances, %d at most (default 1)", MaxInstanceCount)
		checkRange(p, "scale_settings.min_instances", s.MinInstances, 0, MaxInstanceCount, instances)
		checkRange(p, "scale_settings.max_instances", s.MaxInstances, 0, MaxInstanceCount, instances)
		if s.MinInstances > 0 && s.MaxInstances > 0 && s.MinInstances > s.MaxInstances &&
			s.MaxInstances <= MaxInstanceCount {
			p.add("scale_settings.min_instances", "must not exceed scale_settings.max_instances (%d), got %d: lower min_instances or raise max_instances",
				s.MaxInstances, s.MinInstances)
		}
		checkRange(p, "scale_settings.target_utilization_percentage", s.TargetUtilizationPercentage, 0, 100,
			"set a percent of busy capacity (default 70)")
		checkRange(p, "scale_settings.polling_interval", s.PollingInterval, 0, MaxPollingInterval,
			fmt.Sprintf("set a number of seconds, %d at most (default 1)", MaxPollingInterval))
	}
	d.validateWorkerCount(p)
}

// validateWorkerCount checks environment_variables.WORKER_COUNT, the inference server's
// number of Python workers, when the deployment sets it.
func (d *Deployment) validateWorkerCount(p *problems) {
	v, ok := d.EnvironmentVariables["WORKER_COUNT"]
	if !ok {
		return
	}
	const field = "environment_variables.WORKER_COUNT"
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		p.add(field, "must be a whole number between 1 and %d, got %q: set the number of Python worker processes, e.g. \"2\"", MaxWorkerCount, v)
		return
	}
	checkRange(p, field, n, 1, MaxWorkerCount, "set the number of Python worker processes of one instance (default 1)")
}

// readSpecFile reads a YAML file of at most MaxSpecFileBytes. kind names the file in
// messages ("endpoint", "deployment").
func readSpecFile(path, kind string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: path, Message: fmt.Sprintf("read %s file: %v", kind, err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: path, Message: fmt.Sprintf("read %s file: %v", kind, err)}
	}
	tooBig := func(size int64) error {
		return &diag.Error{Code: diag.BadArgument, Target: path, Message: fmt.Sprintf(
			"read %s file: %s holds %d bytes, more than the limit of %d (4 MiB) for a spec file: "+
				"keep models and data out of the YAML and point to them with paths", kind, path, size, MaxSpecFileBytes)}
	}
	if info.Mode().IsRegular() && info.Size() > MaxSpecFileBytes {
		return nil, tooBig(info.Size())
	}
	// Read one byte past the limit so a file that grew, or a pipe, is caught too.
	buf, err := io.ReadAll(io.LimitReader(f, MaxSpecFileBytes+1))
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: path, Message: fmt.Sprintf("read %s file: %v", kind, err)}
	}
	if len(buf) > MaxSpecFileBytes {
		return nil, tooBig(int64(len(buf)))
	}
	return buf, nil
}

// Bounds of a spec document's shape. yaml.v3 checks a mapping for duplicate keys in
// time quadratic in its length, so these caps keep decoding fast on hostile input.
const (
	// MaxMappingKeys is the most keys one mapping (environment_variables, tags, ...) may hold.
	MaxMappingKeys = 1000
	// MaxSpecNodes is the most YAML nodes (keys, values, list items) one spec may hold.
	MaxSpecNodes = 100000
)

// checkShape refuses a document with a mapping of more than MaxMappingKeys keys or more
// than MaxSpecNodes nodes in all, naming the first offender. It runs in time linear in
// the document and stops at the first problem.
func checkShape(source string, root *yaml.Node) error {
	nodes := 0
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		nodes += 1 + len(n.Content)
		if nodes > MaxSpecNodes {
			return &diag.Error{Code: diag.BadArgument, Target: source, Message: fmt.Sprintf(
				"%s holds more than %d YAML nodes (keys, values and list items), the limit for a spec: "+
					"keep data out of the spec and point to it with paths", source, MaxSpecNodes)}
		}
		if n.Kind == yaml.MappingNode && len(n.Content)/2 > MaxMappingKeys {
			field := strings.TrimSuffix(path, ".")
			if field == "" {
				field = "the document"
			}
			return &diag.Error{Code: diag.BadArgument, Target: strings.TrimSuffix(path, "."), Message: fmt.Sprintf(
				"%s: %s has %d keys, more than the limit of %d for one mapping", source, field, len(n.Content)/2, MaxMappingKeys)}
		}
		for i, c := range n.Content {
			p := path
			switch {
			case n.Kind == yaml.MappingNode && i%2 == 1:
				p = path + n.Content[i-1].Value + "."
			case n.Kind == yaml.SequenceNode:
				p = path + strconv.Itoa(i) + "."
			}
			if err := walk(c, p); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, "")
}
