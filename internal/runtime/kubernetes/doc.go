// Package kubernetes maps Berth's online deployments onto Kubernetes objects and reads
// Kubernetes status back as Berth's documented errors. This part is pure: it builds the
// Deployment, Service and Secret Berth applies for one online deployment (Objects),
// refuses resources Kubernetes would reject before anything is applied (Validate),
// turns pod and Deployment status into PodUnschedulable, ImagePullLoopBackOff,
// DeploymentCrashLoopBackOff or PodOutOfMemory (Classify, Ready). Cluster and Runtime
// talk to a compute's API server (runtime.Clusters): apply, observe, watch the pods'
// addresses, read their logs, delete. It alone imports k8s.io packages.
package kubernetes
