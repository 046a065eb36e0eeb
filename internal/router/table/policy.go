package table

import "net/http"

// ResponsePolicy is the status codes one compute kind answers scoring requests with,
// as data: Berth's router decides as a managed endpoint does, and the policy of the
// endpoint's compute turns that status into its own. A status the policy does not name
// is kept.
type ResponsePolicy struct {
	// Kind names the compute kind: "managed" or "kubernetes".
	Kind string
	// Rewrite maps a managed status to this kind's.
	Rewrite map[int]int
	// PassModelStatus says a model's own error status (managed: 424 with the status in
	// ms-azureml-model-error-statuscode) is answered as it is, after ModelRewrite.
	PassModelStatus bool
	// ModelRewrite maps a model's own status when PassModelStatus is set.
	ModelRewrite map[int]int
}

// ManagedPolicy is the managed kind's: every status as Berth's router answers it (spec
// §6.3, managed online endpoints).
func ManagedPolicy() ResponsePolicy {
	return ResponsePolicy{Kind: "managed"}
}

// KubernetesPolicy is the Kubernetes kind's (spec §6.3, Kubernetes online endpoints):
// a failing model or instance is 502 where managed says 424, too many requests before
// the autoscaler adds replicas is 503 where managed says 429, a request timeout is 504
// where managed says 408. A status the model returns itself is passed through, except
// 500, which azureml-fe rewrites to 502 so it is not taken for its own failure. 409
// (an operation in progress) and 500 (Berth's own failure) are the same on both.
func KubernetesPolicy() ResponsePolicy {
	return ResponsePolicy{
		Kind: "kubernetes",
		Rewrite: map[int]int{
			http.StatusFailedDependency: http.StatusBadGateway,         // 424 → 502
			http.StatusTooManyRequests:  http.StatusServiceUnavailable, // 429 → 503
			http.StatusRequestTimeout:   http.StatusGatewayTimeout,     // 408 → 504
		},
		PassModelStatus: true,
		ModelRewrite:    map[int]int{http.StatusInternalServerError: http.StatusBadGateway},
	}
}

// Status is the status this kind answers with where a managed endpoint answers managed.
// modelStatus is the status run() returned when managed is 424 because of it (0 when
// the 424 is the instance's failure, e.g. a worker that died).
func (p ResponsePolicy) Status(managed, modelStatus int) int {
	if managed == http.StatusFailedDependency && p.PassModelStatus && modelStatus != 0 {
		if s, ok := p.ModelRewrite[modelStatus]; ok {
			return s
		}
		return modelStatus
	}
	if s, ok := p.Rewrite[managed]; ok {
		return s
	}
	return managed
}
