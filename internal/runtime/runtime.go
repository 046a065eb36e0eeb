// Package runtime owns the Runtime interface: how a deployment's instances are started
// and stopped, whatever runs them (local processes now, Kubernetes later).
package runtime

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// InstanceSpec is everything needed to start one instance of a deployment. Paths are
// absolute and already hold the instance's own copy of model and code.
type InstanceSpec struct {
	Endpoint    string
	Deployment  string
	Index       int
	Dir         string            // the instance's folder
	CodeDir     string            // working directory
	EntryScript string            // path of the scoring script
	ModelDir    string            // AZUREML_MODEL_DIR
	Env         map[string]string // the deployment's environment_variables and Azure's variables
	WorkerCount int
	Python      string // interpreter for the workers
	LogPath     string // inference-server log
	StatusFile  string // where a startup failure is written as a JSON diag.Error
	// MemoryLimit caps the memory of the instance's processes together, in bytes (0 = none).
	MemoryLimit int64
	// WorkerExited is told why a worker of the instance exited and was replaced (nil:
	// nobody listens); see inference.Config.WorkerExited for the causes.
	WorkerExited func(cause string)
}

// Instance is one started instance.
type Instance interface {
	// Addr is the host:port the instance serves HTTP on; "" when it is served in-process.
	Addr() string
	// Handler serves /, /score and /swagger.json of an instance that runs in-process;
	// nil when it is reached over HTTP at Addr.
	Handler() http.Handler
	// Done is closed when the instance has exited.
	Done() <-chan struct{}
	// Err describes how the instance exited (after Done), e.g. "exit status 3".
	Err() error
	// Stop stops the instance: signal, grace period, kill.
	Stop(grace time.Duration) error
}

// Runtime starts instances.
type Runtime interface {
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
}

// OutOfMemoryError is how an instance ended when it used more memory than its
// instance_type allows.
type OutOfMemoryError struct {
	Peak, Limit int64 // bytes
}

func (e *OutOfMemoryError) Error() string {
	return fmt.Sprintf("killed: its processes used %d MiB of memory, over the %d MiB its instance_type allows", e.Peak>>20, e.Limit>>20)
}
