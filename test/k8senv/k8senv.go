// Package k8senv starts a real Kubernetes control plane for tests: etcd and
// kube-apiserver through controller-runtime's envtest and, with [WithPods],
// kube-controller-manager, kube-scheduler and kwok as child processes, so that
// Deployments get Pods that reach Running on a fake node.
//
// The binaries come from the folder KUBEBUILDER_ASSETS names or, when it is
// unset, from bin/k8s-v1.34.4 at the repository root; `bash tools/k8s/build.sh`
// builds them (about 6 minutes cold, nothing when present). Without them the
// test is skipped. Each cluster is private to its test and torn down by
// t.Cleanup.
//
// Pods get loopback IPs (127.1.0.0/16, [LoopbackPodCIDR]; kwok hands out
// 127.1.0.0 first, which Linux serves like any 127.x address) so a test may
// start real servers on them; never send test traffic to a pod IP outside
// 127.0.0.0/8.
// The API server refuses loopback addresses in EndpointSlices, so Services whose
// Pods have loopback IPs get no EndpointSlice endpoints; [WithPodCIDR] picks
// another range for a test that needs EndpointSlices and sends no traffic.
package k8senv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsDir is where tools/k8s/build.sh puts the binaries, relative to the
// repository root.
const AssetsDir = "bin/k8s-v1.34.4"

// LoopbackPodCIDR is the range kwok assigns Pod IPs from unless [WithPodCIDR]
// says otherwise.
const LoopbackPodCIDR = "127.1.0.0/16"

// Cluster is a running control plane, private to one test.
type Cluster struct {
	// Config connects as an administrator (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials, in
	// the test's temporary directory.
	Kubeconfig string
	// Client is a clientset built from Config.
	Client kubernetes.Interface

	dir  string
	logs []string
}

// Option changes what [Start] starts.
type Option func(*options)

type options struct {
	pods    bool
	podCIDR string
}

// WithPods also starts kube-controller-manager, kube-scheduler and kwok, and
// registers the fake node [FakeNode], so Pods are scheduled and reach Running.
func WithPods() Option { return func(o *options) { o.pods = true } }

// WithPodCIDR makes kwok assign Pod IPs from cidr instead of [LoopbackPodCIDR].
// Addresses outside 127.0.0.0/8 are for the API only: send them no traffic.
func WithPodCIDR(cidr string) Option { return func(o *options) { o.podCIDR = cidr } }

// Start starts a control plane for t and stops it when t ends. It skips t when
// no binaries are found, and fails t when KUBEBUILDER_ASSETS names a folder
// that lacks one it needs.
func Start(t *testing.T, opts ...Option) *Cluster {
	t.Helper()
	o := options{podCIDR: LoopbackPodCIDR}
	for _, opt := range opts {
		opt(&o)
	}
	assets := assetsFor(t, o.pods)
	// The temporary directory is created first so it is removed last, after
	// the log files in it have been read.
	c := &Cluster{dir: t.TempDir()}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	// Explicit paths, because envtest would otherwise read KUBEBUILDER_ASSETS
	// itself, relative paths included.
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, "etcd")}
	env.ControlPlane.Etcd.Out, env.ControlPlane.Etcd.Err = c.logFile(t, "etcd")
	env.ControlPlane.APIServer = &envtest.APIServer{Path: filepath.Join(assets, "kube-apiserver")}
	env.ControlPlane.APIServer.Out, env.ControlPlane.APIServer.Err = c.logFile(t, "kube-apiserver")

	// Cleanups run last-registered first: envtest stops after the children
	// (registered later) are gone; stopping it while they still watch takes
	// about 20 s instead of 1 s.
	t.Cleanup(func() {
		start := time.Now()
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
		t.Logf("k8senv: etcd and kube-apiserver stopped in %v", time.Since(start).Round(time.Millisecond))
	})
	t.Cleanup(func() { c.printLogs(t) })

	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest with binaries from %s: %v", assets, err)
	}
	t.Logf("k8senv: etcd and kube-apiserver up in %v", time.Since(start).Round(time.Millisecond))
	c.Config = cfg
	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatalf("build clientset: %v", err)
	}
	if o.pods {
		c.startPods(t, assets, o.podCIDR)
	}
	return c
}

// Namespace creates the namespace name and returns name.
func (c *Cluster) Namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// assetsFor returns the folder holding the binaries, skipping t when there is
// none. A folder named by KUBEBUILDER_ASSETS must hold them all: CI sets it
// and its tests must run, not skip.
func assetsFor(t *testing.T, pods bool) string {
	t.Helper()
	need := []string{"etcd", "kube-apiserver"}
	if pods {
		need = append(need, "kube-controller-manager", "kube-scheduler", "kwok")
	}
	const hint = "run `bash tools/k8s/build.sh` to build them"
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	switch {
	case dir == "":
		dir = filepath.Join(repoRoot(), AssetsDir)
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
			t.Skipf("no Kubernetes binaries: KUBEBUILDER_ASSETS is unset and %s does not exist; %s", dir, hint)
		}
	case !filepath.IsAbs(dir):
		// go test runs in the package's folder; a relative path was meant
		// from the repository root.
		dir = filepath.Join(repoRoot(), dir)
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("Kubernetes binaries in %s: %s is missing; %s", dir, b, hint)
		}
	}
	return dir
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// logFile creates a log file in the cluster's directory for a process, to be
// printed if the test fails.
func (c *Cluster) logFile(t *testing.T, name string) (*os.File, *os.File) {
	t.Helper()
	path := filepath.Join(c.dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create log file: %v", err)
	}
	c.logs = append(c.logs, path)
	t.Cleanup(func() { f.Close() })
	return f, f
}

// printLogs prints the tail of every process's log when the test failed.
func (c *Cluster) printLogs(t *testing.T) {
	if !t.Failed() {
		return
	}
	const limit = 64 << 10
	for _, path := range c.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("k8senv: %v", err)
			continue
		}
		note := ""
		if len(b) > limit {
			b, note = b[len(b)-limit:], fmt.Sprintf(" (last %d KiB)", limit>>10)
		}
		t.Logf("k8senv: %s%s:\n%s", filepath.Base(path), note, b)
	}
}
