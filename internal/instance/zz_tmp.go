// Package instance is a temporary stand-in until the real contract is merged.
package instance

import (
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/supervise"
)

type State string

const (
	Starting   State = "Starting"
	Ready      State = "Ready"
	NotReady   State = "NotReady"
	Restarting State = "Restarting"
	Stopped    State = "Stopped"
)

// temporary stand-ins

type Phases struct{ ImportMs, InitMs, ReadyMs float64 }
type Status struct {
	Error  *diag.Error `json:"error,omitempty"`
	Phases *Phases     `json:"phases,omitempty"`
}

func ReadStatus(path string) (Status, error) { return Status{}, nil }

const CrashLoopRestarts = 3

func InstanceBackoff() supervise.Backoff {
	return supervise.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, ResetAfter: time.Minute}
}

const BuiltinMLflow = "builtin:mlflow"
const DefaultPython = "python3"
