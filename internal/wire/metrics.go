package wire

// Phase is one step of a deployment's latest provision, for the studio's waterfall:
// "environment", "artifact copy", "import", "init()", "readiness". Times are RFC 3339
// with fractional seconds, UTC.
type Phase struct {
	Name  string `json:"name"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// EndpointMetrics is the answer of GET /endpoints/{name}/metrics: the server's
// in-memory history of the endpoint's deployments, one point every StepSeconds.
type EndpointMetrics struct {
	Endpoint    string              `json:"endpoint"`
	StepSeconds int                 `json:"step_seconds"`
	Deployments []DeploymentMetrics `json:"deployments"`
}

// DeploymentMetrics is the history of one deployment, oldest point first.
type DeploymentMetrics struct {
	Name   string         `json:"name"`
	Points []MetricsPoint `json:"points"`
}

// MetricsPoint is one step of history: the requests answered during the step by
// status class ("2xx" counts every status below 400), their latency percentiles, and
// each live instance's CPU and memory at the step's end.
type MetricsPoint struct {
	T            string                     `json:"t"`
	Requests     map[string]int64           `json:"requests"`
	LatencyP50Ms float64                    `json:"latency_p50_ms"`
	LatencyP99Ms float64                    `json:"latency_p99_ms"`
	Instances    map[string]InstanceMetrics `json:"instances"`
}

// InstanceMetrics is one instance's CPU (percent of one core, summed over its worker
// processes) and resident memory.
type InstanceMetrics struct {
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryBytes int64   `json:"memory_bytes"`
}
