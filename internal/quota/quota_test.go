package quota

import (
	"testing"

	"github.com/berthml/berth/internal/diag"
)

func TestDeployment(t *testing.T) {
	c := Checker{Limits: Limits{Cores: 4, MemoryBytes: 16 * gib}}
	one := func(ep, dep, it string, n int) Use {
		return Use{Endpoint: ep, Deployment: dep, InstanceType: it, Count: n}
	}
	tests := []struct {
		name   string
		ask    Ask
		others []Use
		code   diag.Code // "" = accepted
		target string
	}{
		{"fits", Ask{Use: one("e", "b", "Standard_DS2_v2", 1), FreeDisk: -1}, nil, "", ""},
		{"cores over", Ask{Use: one("e", "b", "Standard_DS3_v2", 2), FreeDisk: -1}, nil, diag.OutOfQuota, "cores"},
		{"cores used by others", Ask{Use: one("e", "g", "Standard_DS2_v2", 2), FreeDisk: -1}, []Use{one("e", "b", "Standard_DS2_v2", 1)}, diag.OutOfQuota, "cores"},
		{"an update releases its own use", Ask{Use: one("e", "b", "Standard_DS2_v2", 2), Replacing: true, FreeDisk: -1}, []Use{one("e", "b", "Standard_DS2_v2", 2)}, "", ""},
		{"memory over", Ask{Use: one("e", "b", "Standard_E2s_v3", 2), FreeDisk: -1}, nil, diag.OutOfQuota, "memory"},
		{"unknown instance type", Ask{Use: one("e", "b", "Standard_Nope", 1), FreeDisk: -1}, nil, diag.BadArgument, "instance_type"},
		{"model over the instance disk", Ask{Use: one("e", "b", "Standard_DS1_v2", 1), ModelBytes: 8 * gib, FreeDisk: -1}, nil, diag.OutOfQuota, "disk"},
		{"copies over the free disk", Ask{Use: one("e", "b", "", 3), ModelBytes: 1 << 20, FreeDisk: 2 << 20}, nil, diag.OutOfQuota, "disk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Deployment(tt.ask, tt.others)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			de := diag.As(err)
			if de == nil || de.Code != tt.code || de.Target != tt.target {
				t.Fatalf("got %v, want %s on %s", err, tt.code, tt.target)
			}
		})
	}
}

func TestDeploymentsPerEndpoint(t *testing.T) {
	var others []Use
	for i := 0; i < MaxDeploymentsPerEndpoint; i++ {
		others = append(others, Use{Endpoint: "e", Deployment: string(rune('a' + i))})
	}
	if de := diag.As(Checker{}.Deployment(Ask{Use: Use{Endpoint: "e", Deployment: "new", Count: 1}, FreeDisk: -1}, others)); de == nil || de.Target != "deployments" {
		t.Fatalf("the 21st deployment: %v, want OutOfQuota on deployments", de)
	}
	if err := (Checker{}).Deployment(Ask{Use: Use{Endpoint: "e", Deployment: "a", Count: 1}, Replacing: true, FreeDisk: -1}, others); err != nil {
		t.Fatalf("an update on a full endpoint: %v", err)
	}
}

func TestEndpoints(t *testing.T) {
	c := Checker{Limits: Limits{MaxEndpoints: 2}}
	if err := c.Endpoints(1); err != nil {
		t.Fatal(err)
	}
	if de := diag.As(c.Endpoints(2)); de == nil || de.Code != diag.OutOfQuota {
		t.Fatalf("third endpoint: %v", de)
	}
	if err := (Checker{}).Endpoints(1000); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}
