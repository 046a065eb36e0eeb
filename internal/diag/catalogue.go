package diag

import "sort"

// Entry explains one documented error code: why it happens and how a Berth user fixes it.
type Entry struct {
	Code Code
	// Reason is the cause, in plain words.
	Reason string
	// Remedy is what to change or run.
	Remedy string
	// Berth says whether and how Berth produces the code on one machine.
	Berth string
}

// Codes named by the troubleshooting guide that Berth has no cause for on one machine
// (several happen on Kubernetes computes).
const (
	OutOfQuota                      Code = "OutOfQuota"
	ImageBuildFailure               Code = "ImageBuildFailure"
	SecretsInjectionError           Code = "SecretsInjectionError"
	WorkspaceManagedNetworkNotReady Code = "WorkspaceManagedNetworkNotReady"
	InvalidDeploymentSpec           Code = "InvalidDeploymentSpec"
	PodOutOfMemory                  Code = "PodOutOfMemory"
	PodUnschedulable                Code = "PodUnschedulable"
	ImagePullLoopBackOff            Code = "ImagePullLoopBackOff"
	NamespaceNotFound               Code = "NamespaceNotFound"
	KubernetesUnaccessible          Code = "KubernetesUnaccessible"
)

// catalogue returns every entry; built on each call so nothing is shared mutable state.
func catalogue() []Entry {
	return append(startupEntries(), requestEntries()...)
}

// startupEntries is the first part of the catalogue (kept in two functions so neither
// grows past a screenful).
func startupEntries() []Entry {
	return []Entry{
		{ImageBuildFailure,
			"The Python environment of the deployment could not be built from its conda file or image.",
			"Read the build log the error names; pin the versions of the packages in environment/conda.yaml, check the package names, and deploy again.",
			"Yes: a conda/pip package pip cannot install, a version pin not met with --env-strict, or environment.build / inference_config (the process runtime builds no images); the message quotes pip's error and names the build log."},
		{OutOfQuota,
			"The deployment asks for more than is available: cores, memory or disk for its instance_type × instance_count, or more endpoints/deployments/instances than the limits allow.",
			"Lower instance_count, pick a smaller instance_type, delete deployments you no longer use, or raise the quota in the server configuration.",
			"Yes: instance_type × instance_count over `berth serve --quota-cores/--quota-memory`, more than 20 deployments on an endpoint, more endpoints than --max-endpoints; an instance over its instance_type's memory (OutOfQuota with PodOutOfMemory in the details and the peak seen); an uploaded archive that expands past the server's artifact cap (bytes or files), naming both sizes."},
		{BadArgument,
			"A field of the YAML or of the request is invalid, or the model or code could not be read (\"unable to download user model\").",
			"Fix the field the message names (file, field path, value and rule are given), check that model.path and code_configuration.code exist, and run the command again.",
			"Yes: every validation error, at the CLI before upload and again at the server, with every bad field listed at once."},
		{ResourceNotReady,
			"An instance did not become ready: score.py failed to import, lacks init() or run(), init() raised, the process exited, or init() took longer than the readiness probe allows.",
			"Read the Python error in the message and the log (`berth online-deployment get-logs -e <endpoint> -n <deployment> --lines 100`); fix score.py, or raise readiness_probe.failure_threshold / period for a slow init(); then `berth online-deployment update -f <file>`.",
			"Yes: the deployment is Failed with ResourceNotReady and the script's own code (below) in its details."},
		{ResourceNotFound,
			"Something the deployment references does not exist: a registered model or environment (azureml:name:version), or an artifact.",
			"Check the reference for typos; use an inline model (model: {path: ./model}) until the registry exists.",
			"Yes: azureml: model references, with the exact reference in the message."},
		{WorkspaceManagedNetworkNotReady,
			"The workspace's managed network is still being provisioned.",
			"Nothing to do with Berth: there is no managed network on one machine.",
			"Never: there is no workspace network."},
		{OperationCanceled,
			"Another operation on the same endpoint was still running (a deployment Creating, Updating or Deleting), so this one was refused.",
			"Wait until the running operation ends (`berth online-deployment list -e <endpoint>` shows Succeeded or Failed), then run the command again.",
			"Yes: HTTP 409 for a create, update or delete on an endpoint with an operation in progress; nothing is changed."},
		{SecretsInjectionError,
			"An environment_variables value refers to a secret (${{azureml://connections/...}} or ${{keyvault:...}}) that could not be read.",
			"Check the reference's spelling and that the connection exists.",
			"Yes: a ${{azureml://connections/<name>/credentials/<key>}} reference to a missing connection or key fails the deployment naming the reference (values are never printed); ${{keyvault:...}} references are not resolved locally."},
		{InternalServerError,
			"Berth itself failed.",
			"Look at the `berth serve` log around the time of the failure and report it with the deployment's `show` output.",
			"Yes, for faults of the server itself."},
		{UserScriptImportError,
			"score.py could not be imported: a syntax error, a missing package (ModuleNotFoundError) or an exception at import time.",
			"Fix the line the Python error names. For a missing package, install it for the interpreter named in the message, or point `berth serve --python` / BERTH_PYTHON at one that has it (Debian's packages live in /usr/bin/python3).",
			"Yes: in the details of ResourceNotReady, quoting the Python error with file and line."},
	}
}

// requestEntries is the rest of the catalogue.
func requestEntries() []Entry {
	return []Entry{
		{UserScriptInitFailed,
			"init() raised an exception, often because the model file is not where it looks (AZUREML_MODEL_DIR is the parent of the model folder: $AZUREML_MODEL_DIR/model/x.pkl for path: ./model).",
			"Read the traceback in `get-logs`, fix init() or the model path, and update the deployment.",
			"Yes: in the details of ResourceNotReady, quoting the exception."},
		{UserScriptFunctionNotFound,
			"score.py does not define init() or run().",
			"Define both functions at the top level of the scoring script named by code_configuration.scoring_script.",
			"Yes: in the details of ResourceNotReady, naming the missing function."},
		{EndpointNotFound,
			"The endpoint named by the command or by endpoint_name does not exist.",
			"Create it first with `berth online-endpoint create -f endpoint.yml`, or fix endpoint_name (`berth online-endpoint list` shows the names).",
			"Yes: HTTP 404 before anything is uploaded."},
		{EndpointAlreadyExists,
			"An endpoint with that name already exists.",
			"Choose another name, or change the existing endpoint with `berth online-endpoint update`.",
			"Yes: HTTP 409."},
		{DeploymentAlreadyExists,
			"A deployment with that name already exists on the endpoint.",
			"Use `berth online-deployment update -f <file>` to change it, or choose another name.",
			"Yes: HTTP 409."},
		{InvalidDeploymentSpec,
			"The deployment's numbers are out of range, e.g. instance_count 0 or above 50.",
			"Set instance_count between 1 and 50.",
			"Reported as BadArgument with the field path."},
		{DeploymentCrashLoopBackOff,
			"An instance keeps exiting after it started: a crash in run(), os._exit, memory over the limit, or a C extension fault.",
			"Read the last log lines in the error and `get-logs`; fix the cause and update the deployment. Berth keeps restarting the instance with growing delays meanwhile.",
			"Yes: workers that die 3 times within a minute stop their instance; after 3 restarts of an instance in a row the deployment is Failed with the last exit status and log lines, and Berth keeps restarting it with growing delays."},
		{PodOutOfMemory,
			"An instance used more memory than its instance_type allows.",
			"Pick an instance_type with more memory, or make the model smaller.",
			"Yes: a watchdog sums the memory of the instance's processes and kills them over the cap; reported in the details of OutOfQuota (memory) with the peak. On Kubernetes computes: a container OOMKilled, with its memory limit and last log lines."},
		{PodUnschedulable,
			"No node of the Kubernetes cluster can run the deployment's pods: not enough cpu or memory, taints, or no node matching the instance type.",
			"Lower resources.requests or pick a smaller instance type, add nodes to the cluster, or check the nodes' taints; then update the deployment.",
			"On Kubernetes computes: when the pods stay unschedulable for a minute, with the scheduler's message. Never on one machine."},
		{NamespaceNotFound,
			"The namespace a Kubernetes compute names does not exist in its cluster.",
			"Create it (`kubectl create namespace <ns>`) or attach the compute again with an existing one (`berth compute attach ... --namespace <ns>`).",
			"On Kubernetes computes: checked when the compute is attached and when a deployment is applied."},
		{KubernetesUnaccessible,
			"Berth cannot reach or authenticate to the API server of a Kubernetes compute.",
			"Check the kubeconfig the error names: its server address, that the cluster is up and reachable from the Berth server, and its credentials (`kubectl --kubeconfig <file> get ns`).",
			"On Kubernetes computes: the error names the kubeconfig, the API server address and the network or TLS error."},
		{ImagePullLoopBackOff,
			"The pods of a Kubernetes deployment cannot pull their image (Kubernetes reports ImagePullBackOff or ErrImagePull).",
			"Check the compute's image name, that the image was built and pushed to a registry the cluster's nodes can reach (or loaded into the cluster), and its pull secret.",
			"On Kubernetes computes only: read from the pods' container status, naming the image and Kubernetes' message."},
		{RequestEntityTooLarge,
			"A request to the control plane carried a body larger than the limit the error names (16 MiB for a JSON request).",
			"Keep models and code out of the spec: point to them with paths, which the CLI uploads as artifacts.",
			"Yes: HTTP 413 naming the limit."},
		{Unauthorized,
			"The key or admin token is missing or wrong.",
			"Scoring: send `Authorization: Bearer <key>` with a key from `berth online-endpoint get-credentials -n <endpoint>`. Control plane: the CLI reads the admin token from <data-dir>/server.json.",
			"Yes: HTTP 401."},
		{AuthorizationFailed,
			"The credential is valid but may not make this call: a pod's token (from a Kubernetes compute's Secret) only fetches its deployment's model and code and serves its batch job's workers.",
			"Use the admin token (<data-dir>/server.json) or an access token from `berth account get-access-token` for anything else.",
			"Yes: HTTP 403."},
	}
}

// Lookup returns the catalogue entry of a code.
func Lookup(code Code) (Entry, bool) {
	for _, e := range catalogue() {
		if e.Code == code {
			return e, true
		}
	}
	return Entry{}, false
}

// Catalogue returns every entry, sorted by code.
func Catalogue() []Entry {
	c := catalogue()
	sort.Slice(c, func(i, j int) bool { return c[i].Code < c[j].Code })
	return c
}
