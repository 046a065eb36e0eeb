package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

// invokeSets are the --set fields of `batch-endpoint invoke`: the per-job overrides.
const invokeSets = "output_file_name, retry_settings.max_retries, retry_settings.timeout, error_threshold"

func batchEndpointInvoke(g *globals) *cobra.Command {
	var name, input, inputType string
	var instances, miniBatch int
	var sets []string
	var stream bool
	var job wire.JobCreate
	cmd := &cobra.Command{
		Use:   "invoke",
		Short: "Start a batch job on an endpoint and print it (--stream: then follow it to its end)",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o, err := jobOverrides(sets)
		if err != nil {
			return err
		}
		if cmd.Flags().Changed("instance-count") {
			o.InstanceCount = instances
		}
		if cmd.Flags().Changed("mini-batch-size") {
			o.MiniBatchSize = miniBatch
		}
		if o != (spec.JobOverrides{}) {
			if job.Overrides, err = json.Marshal(o); err != nil {
				return err
			}
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if job.Input, err = jobInput(ctx, c, input, inputType, cmd.ErrOrStderr()); err != nil {
			return err
		}
		j, raw, err := c.InvokeBatchEndpoint(ctx, name, job)
		if err != nil {
			return err
		}
		if err := g.print(cmd.OutOrStdout(), raw, jobColumns...); err != nil {
			return err
		}
		if !stream {
			return nil
		}
		return newStreamer(c, cmd).run(ctx, j.Name)
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "endpoint name")
	f.StringVar(&input, "input", "", "the data to score: a local file or folder (uploaded), azureml:<data>:<version>, azureml:<data>@latest, azureml://datastores/<name>/paths/<path>, or an http(s) URL")
	f.StringVar(&inputType, "input-type", "", "uri_folder (default) or uri_file (the default for a local file)")
	f.StringVarP(&job.Deployment, "deployment-name", "d", "", "run on this deployment instead of the endpoint's default (alias --deployment)")
	f.StringVar(&job.Name, "job-name", "", "the job's name (default: generated)")
	f.StringVar(&job.ExperimentName, "experiment-name", "", "the job's experiment (default: the endpoint's name)")
	f.IntVarP(&instances, "instance-count", "c", 0, "nodes for this job (overrides the deployment's resources.instance_count)")
	f.IntVarP(&miniBatch, "mini-batch-size", "m", 0, "files per run() call for this job (overrides settings.mini_batch_size)")
	f.StringVar(&job.OutputPath, "output-path", "", "write the output to azureml://datastores/<name>/paths/<folder> (default: the job's own folder)")
	f.StringArrayVar(&sets, "set", nil, "override a setting for this job: "+invokeSets+" (repeatable)")
	f.BoolVar(&stream, "stream", false, "follow the job's log and progress until it ends, as job stream does")
	requireName(cmd, "name")
	cmd.MarkFlagRequired("input")
	return cmd
}

// jobOverrides reads invoke's --set path=value entries.
func jobOverrides(sets []string) (spec.JobOverrides, error) {
	var o spec.JobOverrides
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return o, diag.New(diag.BadArgument, "--set %q: write it as path=value", s)
		}
		var n *int
		switch k {
		case "output_file_name":
			o.OutputFileName = v
			continue
		case "retry_settings.max_retries":
			n = new(int)
			o.MaxRetries = n
		case "retry_settings.timeout":
			n = &o.Timeout
		case "error_threshold":
			n = new(int)
			o.ErrorThreshold = n
		default:
			return o, diag.New(diag.BadArgument, "--set %s: a job overrides only %s", k, invokeSets)
		}
		var err error
		if *n, err = strconv.Atoi(v); err != nil {
			return o, diag.New(diag.BadArgument, "--set %s: %q is not an integer", k, v)
		}
	}
	return o, nil
}

// remoteInput reports whether an --input names data on the server or the web rather
// than a local path.
func remoteInput(s string) bool {
	for _, p := range []string{"azureml:", "http://", "https://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// jobInput builds the job's input from --input and --input-type, uploading a local
// file or folder unless the server already has it.
func jobInput(ctx context.Context, c *client.Client, input, inputType string, progress io.Writer) (wire.JobInput, error) {
	in := wire.JobInput{Type: inputType}
	switch inputType {
	case "", "uri_folder", "uri_file":
	default:
		return in, diag.New(diag.BadArgument, "--input-type %q: use uri_folder or uri_file", inputType)
	}
	if remoteInput(input) {
		in.Path = input
		if in.Type == "" {
			in.Type = "uri_folder"
		}
		return in, nil
	}
	abs, err := filepath.Abs(input)
	if err != nil {
		return in, diag.New(diag.BadArgument, "--input %q: %v", input, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return in, diag.New(diag.BadArgument,
			"--input %q: no such local file or folder (give a local path, azureml:<data>:<version>, azureml://datastores/<name>/paths/<path> or an http(s) URL)", input)
	}
	if in.Type == "" {
		in.Type = "uri_folder"
		if !info.IsDir() {
			in.Type = "uri_file"
		}
	}
	if in.Artifact, err = uploadPath(ctx, c, "input", abs, progress); err != nil {
		return in, err
	}
	in.LocalPath = abs
	return in, nil
}
