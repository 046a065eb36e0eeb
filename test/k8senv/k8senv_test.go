package k8senv_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/berthml/berth/test/k8senv"
)

// eventually polls cond every 50 ms until it holds, failing t after timeout
// with the last reason cond gave.
func eventually(t *testing.T, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	var why string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, reason, err := cond(ctx)
		why = reason
		return ok, err
	})
	if err != nil {
		t.Fatalf("after %v: %v (%s)", timeout, err, why)
	}
}

func TestConfigMapCRUD(t *testing.T) {
	start := time.Now()
	c := k8senv.Start(t)
	ctx := t.Context()
	ns := c.Namespace(t, "crud")

	// The kubeconfig file works on its own, as `berth compute attach --kubeconfig` will use it.
	fromFile, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load %s: %v", c.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(fromFile)
	if err != nil {
		t.Fatal(err)
	}
	cms := client.CoreV1().ConfigMaps(ns)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v1"}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := cms.Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v1" {
		t.Fatalf("get: %v, data %v", err, got.Data)
	}
	got.Data["k"] = "v2"
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got, err = cms.Get(ctx, "settings", metav1.GetOptions{}); err != nil || got.Data["k"] != "v2" {
		t.Fatalf("get after update: %v, data %v", err, got.Data)
	}
	if err := cms.Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cms.Get(ctx, "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: want NotFound, got %v", err)
	}
	t.Logf("test body done %v after start", time.Since(start).Round(time.Millisecond))
}

// TestEndpointSliceRefusesLoopback pins down why pods with loopback IPs get no
// EndpointSlice endpoints: the API server refuses the address itself.
func TestEndpointSliceRefusesLoopback(t *testing.T) {
	c := k8senv.Start(t)
	ns := c.Namespace(t, "slices")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "loopback"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.1.0.5"}}},
	}
	_, err := c.Client.DiscoveryV1().EndpointSlices(ns).Create(t.Context(), slice, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create EndpointSlice with 127.1.0.5: want Invalid, got %v", err)
	}
	t.Logf("as expected: %v", err)
}

func TestDeploymentPodsRunOnLoopbackIPs(t *testing.T) {
	start := time.Now()
	c := k8senv.Start(t, k8senv.WithPods())
	ns := c.Namespace(t, "pods")
	created := createDeployment(t, c.Client, ns)
	ips := waitPodsRunning(t, c.Client, ns)
	t.Logf("2 pods Running on %v %v after the Deployment was created", ips, time.Since(created).Round(time.Millisecond))
	t.Logf("test body done %v after start", time.Since(start).Round(time.Millisecond))
}

// TestDeploymentEndpointSlice uses a non-loopback pod CIDR so the EndpointSlice
// controller can publish the pods; no traffic is sent to them.
func TestDeploymentEndpointSlice(t *testing.T) {
	start := time.Now()
	c := k8senv.Start(t, k8senv.WithPods(), k8senv.WithPodCIDR("10.244.0.0/16"))
	ns := c.Namespace(t, "slices")
	created := createDeployment(t, c.Client, ns)
	eventually(t, 30*time.Second, func(ctx context.Context) (bool, string, error) {
		slices, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, "", err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready += len(e.Addresses)
				}
			}
		}
		return ready == 2, fmt.Sprintf("%d slices, %d ready addresses", len(slices.Items), ready), nil
	})
	t.Logf("EndpointSlice lists 2 ready addresses %v after the Deployment was created", time.Since(created).Round(time.Millisecond))
	t.Logf("test body done %v after start", time.Since(start).Round(time.Millisecond))
}

func createDeployment(t *testing.T, client kubernetes.Interface, ns string) time.Time {
	t.Helper()
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "berth:test",
					Ports: []corev1.ContainerPort{{ContainerPort: 5001}},
				}}},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(5001)}}},
	}
	created := time.Now()
	if _, err := client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	if _, err := client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	return created
}

// waitPodsRunning waits for 2 Running pods with loopback IPs and returns the IPs.
func waitPodsRunning(t *testing.T, client kubernetes.Interface, ns string) []netip.Addr {
	t.Helper()
	var ips []netip.Addr
	eventually(t, 30*time.Second, func(ctx context.Context) (bool, string, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, "", err
		}
		ips = ips[:0]
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				return false, fmt.Sprintf("pod %s is %s", p.Name, p.Status.Phase), nil
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				return false, fmt.Sprintf("pod %s has no IP yet", p.Name), nil
			}
			if !ip.IsLoopback() {
				return false, "", fmt.Errorf("pod %s has IP %s, want one in 127.0.0.0/8", p.Name, ip)
			}
			ips = append(ips, ip)
		}
		return len(ips) == 2, fmt.Sprintf("running pods with IPs %v", ips), nil
	})
	return ips
}
