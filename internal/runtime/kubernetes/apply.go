package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/berthml/berth/internal/diag"
)

// FieldManager owns the fields Berth applies (server-side apply).
const FieldManager = "berth"

// object is one object of a Set, with the client and resource it is applied through.
type object struct {
	client   *rest.RESTClient
	resource string
	name     string
	body     any
}

// objects lists set's objects in the order they are applied: the Secret the init
// container reads, the Deployment, then the Service in front of it.
func (c *Cluster) objects(set *Set) []object {
	var out []object
	if set.Secret != nil {
		out = append(out, object{c.Core, "secrets", set.Secret.Name, set.Secret})
	}
	out = append(out, object{c.Apps, "deployments", set.Deployment.Name, set.Deployment},
		object{c.Core, "services", set.Service.Name, set.Service})
	return out
}

// Apply creates or updates set's objects in namespace with server-side apply, so a
// second Apply of the same set changes nothing and a changed one updates in place.
func (c *Cluster) Apply(ctx context.Context, namespace string, set *Set) error {
	if err := c.checkOwner(ctx, namespace, set.Deployment); err != nil {
		return err
	}
	for _, o := range c.objects(set) {
		body, err := json.Marshal(o.body)
		if err != nil {
			return err
		}
		force := true
		err = o.client.Patch(types.ApplyPatchType).Namespace(namespace).Resource(o.resource).Name(o.name).
			VersionedParams(&metav1.PatchOptions{FieldManager: FieldManager, Force: &force}, metav1.ParameterCodec).
			Body(body).Do(ctx).Error()
		if err != nil {
			return c.applyErr(ctx, namespace, o, err)
		}
	}
	return nil
}

// checkOwner refuses to apply over a Deployment of the same name that belongs to
// another endpoint and deployment: "a" + "b-c" and "a-b" + "c" give the same name.
func (c *Cluster) checkOwner(ctx context.Context, namespace string, want *appsv1.Deployment) error {
	have := &appsv1.Deployment{}
	err := c.Apps.Get().Namespace(namespace).Resource("deployments").Name(want.Name).Do(ctx).Into(have)
	if err != nil || owns(have.Labels, want.Labels[LabelEndpoint], want.Labels[LabelDeployment]) {
		return nil // absent (or unreadable: the apply says why), or ours
	}
	return &diag.Error{Code: diag.Conflict, Target: "name",
		Message: fmt.Sprintf("the Kubernetes name %q in namespace %s (endpoint and deployment names joined by -) is taken by endpoint %q, deployment %q: rename this deployment or its endpoint",
			want.Name, namespace, have.Labels[LabelEndpoint], have.Labels[LabelDeployment])}
}

// owns reports whether an object's labels name endpoint and deployment.
func owns(l map[string]string, endpoint, deployment string) bool {
	return l[LabelEndpoint] == endpoint && l[LabelDeployment] == deployment
}

// applyErr explains an apply that failed: a missing namespace is NamespaceNotFound, an
// object the API server refused keeps its message; anything else is the cluster's.
func (c *Cluster) applyErr(ctx context.Context, namespace string, o object, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		if nsErr := c.CheckNamespace(ctx, namespace); nsErr != nil {
			return nsErr
		}
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err):
		return fmt.Errorf("the cluster refused %s %s/%s: %w", o.resource, namespace, o.name, err)
	}
	return c.unaccessible(fmt.Errorf("apply %s %s/%s: %w", o.resource, namespace, o.name, err))
}

// Delete deletes the objects of a deployment (Secret, Deployment, Service); objects
// already gone are not an error. Its pods go with the Deployment.
func (c *Cluster) Delete(ctx context.Context, namespace, endpoint, deployment string) error {
	name := ObjectName(endpoint, deployment)
	if o, err := c.Observe(ctx, namespace, endpoint, deployment); err == nil && o.Deployment == nil {
		have := &appsv1.Deployment{}
		if c.Apps.Get().Namespace(namespace).Resource("deployments").Name(name).Do(ctx).Into(have) == nil {
			return nil // the name is another endpoint's deployment: not ours to delete
		}
	}
	background := metav1.DeletePropagationBackground
	for _, o := range []object{{c.Core, "services", name, nil}, {c.Apps, "deployments", name, nil},
		{c.Core, "secrets", SecretName(endpoint, deployment), nil}} {
		err := o.client.Delete().Namespace(namespace).Resource(o.resource).Name(o.name).
			Body(&metav1.DeleteOptions{PropagationPolicy: &background}).Do(ctx).Error()
		if err != nil && !apierrors.IsNotFound(err) {
			return c.unaccessible(fmt.Errorf("delete %s %s/%s: %w", o.resource, namespace, o.name, err))
		}
	}
	return nil
}

// Observed is what the cluster says of a deployment: its Deployment (nil when absent)
// and its pods.
type Observed struct {
	Deployment *appsv1.Deployment
	Pods       []corev1.Pod
}

// Observe reads a deployment's Deployment and pods.
func (c *Cluster) Observe(ctx context.Context, namespace, endpoint, deployment string) (Observed, error) {
	var o Observed
	d := &appsv1.Deployment{}
	err := c.Apps.Get().Namespace(namespace).Resource("deployments").Name(ObjectName(endpoint, deployment)).Do(ctx).Into(d)
	switch {
	case apierrors.IsNotFound(err):
		return o, nil
	case err != nil:
		return o, c.unaccessible(err)
	}
	if !owns(d.Labels, endpoint, deployment) {
		return o, nil // another endpoint's deployment of the same name
	}
	o.Deployment = d
	pods := &corev1.PodList{}
	sel := labels.SelectorFromSet(Labels(endpoint, deployment)).String()
	err = c.Core.Get().Namespace(namespace).Resource("pods").
		VersionedParams(&metav1.ListOptions{LabelSelector: sel}, metav1.ParameterCodec).Do(ctx).Into(pods)
	if err != nil {
		return o, c.unaccessible(err)
	}
	o.Pods = pods.Items
	return o, nil
}
