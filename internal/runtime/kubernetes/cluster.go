package kubernetes

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/berthml/berth/internal/diag"
)

// Cluster is a connection to one Kubernetes compute's API server.
//
// It talks REST with a scheme of the few API groups Berth uses (core, apps, batch, discovery)
// rather than client-go's full clientset, whose registration of every API group costs
// berth serve about 13 MiB of memory whether or not a cluster is attached.
type Cluster struct {
	// Source names the kubeconfig in messages (the file the user attached).
	Source string
	Config *rest.Config
	Core   *rest.RESTClient // /api/v1
	Apps   *rest.RESTClient // /apis/apps/v1
	Batch  *rest.RESTClient // /apis/batch/v1
}

// codecs encode and decode the API groups Berth uses; built at the first connection.
var codecs = sync.OnceValue(func() serializer.CodecFactory { return serializer.NewCodecFactory(newScheme()) })

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, discoveryv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // the generated registrations cannot fail
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s
}

// restClient is a REST client for one API group version.
func restClient(cfg *rest.Config, gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = apiPath
	c.NegotiatedSerializer = codecs().WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = "berth"
	}
	return rest.RESTClientFor(c)
}

// checkTimeout bounds each call that checks a cluster, so an unreachable API server
// fails the command in seconds rather than at the client's default.
const checkTimeout = 10 * time.Second

// Connect builds a client from a kubeconfig's content; source names it in errors. A
// kubeconfig that does not parse is BadArgument.
func Connect(kubeconfig []byte, source string) (*Cluster, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "kubeconfig",
			Message: fmt.Sprintf("%s is not a usable kubeconfig: %v. Pass the file kubectl uses for the cluster (`kubectl config view --raw --minify > cluster.yaml`).", source, err)}
	}
	c := &Cluster{Source: source, Config: cfg}
	if c.Core, err = restClient(cfg, corev1.SchemeGroupVersion, "/api"); err == nil {
		c.Apps, err = restClient(cfg, appsv1.SchemeGroupVersion, "/apis")
	}
	if err == nil {
		c.Batch, err = restClient(cfg, batchv1.SchemeGroupVersion, "/apis")
	}
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "kubeconfig", Message: fmt.Sprintf("%s: %v", source, err)}
	}
	return c, nil
}

// CheckNamespace checks that the API server answers and that namespace exists:
// NamespaceNotFound, or KubernetesUnaccessible naming the kubeconfig and the API server
// address with the network, TLS or credential error.
func (c *Cluster) CheckNamespace(ctx context.Context, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := c.Core.Get().Resource("namespaces").Name(namespace).Do(ctx).Into(&corev1.Namespace{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return &diag.Error{Code: diag.NamespaceNotFound, Target: "namespace",
			Message: fmt.Sprintf("namespace %q does not exist in the cluster at %s (kubeconfig %s): create it with `kubectl create namespace %s`, or attach the compute with an existing one (--namespace)", namespace, c.Config.Host, c.Source, namespace)}
	case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
		return c.unaccessible(fmt.Errorf("the credentials were refused: %w", err))
	}
	return c.unaccessible(err)
}

// unaccessible is KubernetesUnaccessible for err.
func (c *Cluster) unaccessible(err error) *diag.Error {
	return &diag.Error{Code: diag.KubernetesUnaccessible, Target: "kubeconfig",
		Message: fmt.Sprintf("Kubernetes error: cannot use the API server at %s (kubeconfig %s): %v. Check that the cluster is up and reachable from the Berth server and that the kubeconfig's credentials are valid (`kubectl --kubeconfig %s get namespaces`).", c.Config.Host, c.Source, err, c.Source)}
}

// Checker checks Kubernetes computes when they are attached (jobs.ClusterChecker).
type Checker struct{}

// CheckCluster connects with kubeconfig and checks namespace (CheckNamespace).
func (Checker) CheckCluster(ctx context.Context, kubeconfig []byte, source, namespace string) error {
	c, err := Connect(kubeconfig, source)
	if err != nil {
		return err
	}
	return c.CheckNamespace(ctx, namespace)
}
