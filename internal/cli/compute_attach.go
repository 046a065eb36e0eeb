package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
)

// computeAttach attaches a Kubernetes cluster as a compute, as `az ml compute attach
// --type Kubernetes` does; the cluster is named by a kubeconfig file rather than an
// Azure resource id.
func computeAttach(g *globals) *cobra.Command {
	var name, typ, kubeconfig, namespace, image, resourceID, identity string
	cmd := &cobra.Command{
		Use:   "attach",
		Short: "Attach a Kubernetes cluster as a compute (online endpoints with compute: azureml:<name> then run on it)",
		Args:  cobra.NoArgs,
		Example: `  berth compute attach --name k8s --type kubernetes --kubeconfig ~/.kube/config --namespace ml
  berth online-endpoint create -f endpoint.yml --set compute=azureml:k8s`,
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !strings.EqualFold(typ, spec.KubernetesComputeType) {
			return &diag.Error{Code: diag.BadArgument, Target: "type",
				Message: fmt.Sprintf("compute attach takes --type kubernetes, got %q: an amlcompute is made with `berth compute create -n %s --type amlcompute`", typ, name)}
		}
		if kubeconfig == "" {
			return &diag.Error{Code: diag.BadArgument, Target: "kubeconfig",
				Message: "--kubeconfig is required: the file kubectl uses for the cluster (Azure's --resource-id names an AKS cluster Berth cannot reach)"}
		}
		path, err := filepath.Abs(kubeconfig)
		if err != nil {
			return err
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return &diag.Error{Code: diag.BadArgument, Target: "kubeconfig", Message: fmt.Sprintf("read the kubeconfig: %v", err)}
		}
		if resourceID != "" || identity != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), "Warning: --resource-id and --identity-type are accepted for az compatibility and not used: Berth reaches the cluster with the kubeconfig")
		}
		c := &spec.Compute{Name: name, Type: spec.KubernetesComputeType, Namespace: namespace, Image: image,
			Kubeconfig: string(content), KubeconfigFile: path}
		if err := finishSpec(c); err != nil {
			return err
		}
		return putCompute(g, cmd, c)
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "compute name")
	f.StringVarP(&typ, "type", "t", "", "compute type: kubernetes")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster (its current context is used)")
	f.StringVar(&namespace, "namespace", "", "namespace Berth's objects go to (default: default)")
	f.StringVar(&image, "image", "", "container image of Berth's pods (default "+spec.DefaultBerthImage+")")
	f.StringVar(&resourceID, "resource-id", "", "accepted for az compatibility; Berth uses --kubeconfig")
	f.StringVar(&identity, "identity-type", "", "accepted for az compatibility")
	requireName(cmd, "name")
	return cmd
}

// computeDetach detaches a compute: Berth forgets the cluster; what runs there stays.
func computeDetach(g *globals) *cobra.Command {
	return computeRemove(g, "detach", "Detach a Kubernetes compute (Berth forgets it; nothing in the cluster is deleted)", "Detached")
}
