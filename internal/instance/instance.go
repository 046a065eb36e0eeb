// Package instance owns the contract between `berth serve` and an instance (a
// `berth inference-server` process): the flags that start it, the status file it writes,
// the response headers it sets, its states and the crash-loop and restart policy both
// sides apply. Both sides import it, so each of these is written once.
package instance

import (
	"strconv"
	"time"

	"github.com/berthml/berth/internal/supervise"
)

// Flag names of `berth inference-server`, spelled as azmlinfsrv spells them.
const (
	FlagEntryScript = "entry_script"
	FlagModelDir    = "model_dir"
	FlagHost        = "host"
	FlagPort        = "port"
	FlagWorkerCount = "worker_count"
	FlagPython      = "python"
	FlagStatusFile  = "status_file"

	// Flags of azmlinfsrv that berth serve never passes.
	FlagHealthPort     = "health_port"
	FlagAppInsightsKey = "appinsights_instrumentation_key"
	FlagCORSOrigins    = "access_control_allow_origins"
	FlagConfigFile     = "config_file"
)

// DefaultPython is the interpreter that runs score.py when none is configured.
const DefaultPython = "python3"

// BuiltinMLflow, as the entry script, serves an MLflow model without code.
const BuiltinMLflow = "builtin:mlflow"

// Flags are the settings `berth serve` passes to an instance on its command line.
// A zero field is left out of Args, so the instance applies its own default (for
// Python: BERTH_PYTHON, then DefaultPython).
type Flags struct {
	EntryScript string
	ModelDir    string
	Host        string
	Port        int
	WorkerCount int
	Python      string
	StatusFile  string
}

// Args returns the command line after the berth binary: "inference-server" and a flag
// for every non-zero field.
func (f Flags) Args() []string {
	args := []string{"inference-server"}
	str := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name, v)
		}
	}
	num := func(name string, v int) {
		if v != 0 {
			args = append(args, "--"+name, strconv.Itoa(v))
		}
	}
	str(FlagEntryScript, f.EntryScript)
	str(FlagModelDir, f.ModelDir)
	str(FlagHost, f.Host)
	num(FlagPort, f.Port)
	num(FlagWorkerCount, f.WorkerCount)
	str(FlagStatusFile, f.StatusFile)
	str(FlagPython, f.Python)
	return args
}

// HTTP response headers of the scoring contract.
const (
	// HeaderErrorStatus carries the status run() answered with, on a model error (Azure's name).
	HeaderErrorStatus = "ms-azureml-model-error-statuscode"
	// HeaderErrorReason explains a model error in a word or two (Azure's name).
	HeaderErrorReason = "ms-azureml-model-error-reason"
	// HeaderFromRun marks an instance response produced by run(), not by the server
	// itself. It is internal: the router reads it and strips it.
	HeaderFromRun = "X-Berth-From-Run"
)

// State is the state of one instance as the control plane reports it.
type State string

// Instance states.
const (
	Starting   State = "Starting"   // started; workers are running init()
	Ready      State = "Ready"      // answering its liveness probe
	NotReady   State = "NotReady"   // running, but failing its probe
	Restarting State = "Restarting" // exited; waiting out the backoff before a restart
	Stopped    State = "Stopped"    // stopped on purpose
)

// CrashLoopRestarts is how many restarts in a row, without a run long enough to reset
// the backoff, make a deployment DeploymentCrashLoopBackOff.
const CrashLoopRestarts = 3

// Crash-loop limit of the Python workers inside one instance: this many unexpected
// worker exits within WorkerCrashLoopWindow make the instance exit, so that its own
// supervisor sees the crash loop.
const (
	WorkerCrashLoopExits  = 3
	WorkerCrashLoopWindow = time.Minute
)

// InstanceBackoff is the restart policy `berth serve` applies to an instance that exited.
func InstanceBackoff() supervise.Backoff {
	return supervise.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, ResetAfter: time.Minute}
}

// WorkerBackoff is the restart policy an instance applies to a Python worker whose
// replacement failed to start.
func WorkerBackoff() supervise.Backoff {
	return supervise.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, ResetAfter: time.Minute}
}
