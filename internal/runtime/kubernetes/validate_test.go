package kubernetes

import (
	"strings"
	"testing"

	"github.com/berthml/berth/internal/diag"
)

func TestValidate(t *testing.T) {
	rs := func(req, lim map[string]string) *Resources { return &Resources{Requests: req, Limits: lim} }
	m := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	small := &InstanceType{Name: "small", Resources: Resources{Requests: m("cpu", "100m", "memory", "1Gi"), Limits: m("cpu", "1", "memory", "2Gi")}}
	tests := []struct {
		name    string
		edit    func(*DeploymentSpec)
		targets []string // want these detail targets, in order; nil = valid
		words   []string // and these words in the message
	}{
		{name: "valid", edit: func(*DeploymentSpec) {}},
		{name: "no resources", edit: func(s *DeploymentSpec) { s.Resources = nil }},
		{name: "equal requests and limits", edit: func(s *DeploymentSpec) {
			s.Resources = rs(m("cpu", "1", "memory", "1Gi"), m("cpu", "1000m", "memory", "1024Mi"))
		}},
		{name: "cpu request over limit",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "2", "memory", "1Gi"), m("cpu", "1500m")) },
			targets: []string{"resources.requests.cpu"}, words: []string{"resource requests greater than limits", "requests.cpu is 2", "limits.cpu is 1500m", "lower the request or raise the limit"}},
		{name: "memory request over limit",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "1", "memory", "3Gi"), m("memory", "2Gi")) },
			targets: []string{"resources.requests.memory"}, words: []string{"resource requests greater than limits"}},
		{name: "bad quantities",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "lots", "memory", "1Gi"), m("memory", "2 GB")) },
			targets: []string{"resources.limits.memory", "resources.requests.cpu"}, words: []string{"2 problems", `"lots" is not a quantity`, "500m"}},
		{name: "zero and negative",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "0", "memory", "-1Gi"), nil) },
			targets: []string{"resources.requests.cpu", "resources.requests.memory"}, words: []string{"greater than 0"}},
		{name: "unknown resource",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "1", "memory", "1Gi", "amd.com/gpu", "1"), nil) },
			targets: []string{"resources.requests.amd.com/gpu"}, words: []string{"cpu, memory or nvidia.com/gpu"}},
		{name: "requests missing",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(nil, m("cpu", "1")) },
			targets: []string{"resources.requests.cpu", "resources.requests.memory"}, words: []string{"is required on Kubernetes"}},
		{name: "gpu in requests only",
			edit:    func(s *DeploymentSpec) { s.Resources = rs(m("cpu", "1", "memory", "1Gi", "nvidia.com/gpu", "1"), nil) },
			targets: []string{"resources.requests.nvidia.com/gpu"}, words: []string{"move nvidia.com/gpu: 1 to resources.limits"}},
		{name: "gpu request differs from limit",
			edit: func(s *DeploymentSpec) {
				s.Resources = rs(m("cpu", "1", "memory", "1Gi", "nvidia.com/gpu", "1"), m("nvidia.com/gpu", "2"))
			},
			targets: []string{"resources.requests.nvidia.com/gpu"}, words: []string{"must equal resources.limits.nvidia.com/gpu (2)"}},
		{name: "limit over the instance type",
			edit: func(s *DeploymentSpec) {
				s.InstanceType = small
				s.Resources = rs(m("cpu", "500m", "memory", "1Gi"), m("cpu", "1", "memory", "4Gi"))
			},
			targets: []string{"resources.limits.memory"}, words: []string{"over the limit of instance type small (2Gi)", "pick an instance type with more memory"}},
		{name: "instance type requests over its limits",
			edit: func(s *DeploymentSpec) {
				s.Resources = nil
				s.InstanceType = &InstanceType{Name: "odd", Resources: Resources{Requests: m("cpu", "4"), Limits: m("cpu", "2")}}
			},
			targets: []string{"instance type odd requests.cpu"}, words: []string{"resource requests greater than limits"}},
		{name: "liveness success threshold",
			edit:    func(s *DeploymentSpec) { s.Liveness.SuccessThreshold = 3 },
			targets: []string{"liveness_probe.success_threshold"}, words: []string{"must be 1 on Kubernetes, got 3"}},
		{name: "names too long",
			edit:    func(s *DeploymentSpec) { s.Endpoint = strings.Repeat("e", 40); s.Deployment = strings.Repeat("d", 30) },
			targets: []string{"name"}, words: []string{"6 to 62 characters"}},
		{name: "bad namespace",
			edit:    func(s *DeploymentSpec) { s.Namespace = "Team_A" },
			targets: []string{"namespace"}, words: []string{`"Team_A" is not a Kubernetes namespace name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := example()
			tt.edit(&s)
			_, err := Validate(s)
			set, objErr := Objects(s)
			if tt.targets == nil {
				if err != nil || objErr != nil {
					t.Fatalf("Validate = %v, Objects = %v; want valid", err, objErr)
				}
				return
			}
			if objErr == nil || set != nil {
				t.Errorf("Objects built objects for an invalid spec")
			}
			e := diag.As(err)
			if e == nil || e.Code != diag.BadArgument {
				t.Fatalf("Validate = %v, want BadArgument", err)
			}
			var got []string
			for _, d := range e.Details {
				got = append(got, d.Target)
			}
			if strings.Join(got, ",") != strings.Join(tt.targets, ",") {
				t.Errorf("targets = %v, want %v", got, tt.targets)
			}
			for _, w := range tt.words {
				if !strings.Contains(e.Error(), w) {
					t.Errorf("error %q lacks %q", e.Error(), w)
				}
			}
		})
	}
}
