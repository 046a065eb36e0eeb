package k8senv

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// FakeNode is the name of the node kwok runs Pods on.
const FakeNode = "kwok-node-0"

// kwokAnnotation marks the nodes kwok manages; kwok leaves others alone.
const kwokAnnotation = "kwok.x-k8s.io/node"

// startPods starts the controllers, the scheduler and kwok, registers the fake
// node and waits until kwok reports it Ready.
func (c *Cluster) startPods(t *testing.T, assets, podCIDR string) {
	t.Helper()
	start := time.Now()
	kc := "--kubeconfig=" + c.Kubeconfig
	c.startChild(t, assets, "kube-controller-manager", kc, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0", "--use-service-account-credentials=false",
		// Controllers that need a cloud, node IPAM or signing keys stay off.
		"--controllers=*,-serviceaccount-token,-nodeipam,-route,-service-lb-controller,-cloud-node-lifecycle")
	c.startChild(t, assets, "kube-scheduler", kc, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0")
	c.startChild(t, assets, "kwok", kc, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokAnnotation+"=fake",
		"--cidr="+podCIDR, "--node-ip=127.0.0.1", "--server-address=127.0.0.1:0")

	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        FakeNode,
			Annotations: map[string]string{kwokAnnotation: "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": FakeNode, "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	ctx := t.Context()
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", FakeNode, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, FakeNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("node %s did not become Ready (kwok): %v", FakeNode, err)
	}
	t.Logf("k8senv: controller-manager, scheduler and kwok up, node %s Ready in %v", FakeNode, time.Since(start).Round(time.Millisecond))
}

// startChild starts a binary from assets in its own process group, logging to
// a file, and kills the group when the test ends.
func (c *Cluster) startChild(t *testing.T, assets, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(assets, name), args...)
	cmd.Stdout, cmd.Stderr = c.logFile(t, name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		// SIGTERM lets the child flush its buffered log lines; it keeps no
		// state worth waiting long for.
		start := time.Now()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		t.Logf("k8senv: %s stopped in %v", name, time.Since(start).Round(time.Millisecond))
	})
}
