package cli

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
)

var jobColumns = []string{"name", "status", "endpoint_name", "deployment_name", "experiment_name", "start_time"}

// logsOutput is the output name of a job's logs folder on the outputs route.
const logsOutput = "logs"

func newJobCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Follow, cancel and download batch jobs (az ml job)",
	}
	cmd.AddCommand(jobShow(g), jobList(g), jobStream(g), jobCancel(g), jobDownload(g))
	return cmd
}

func jobShow(g *globals) *cobra.Command {
	var name string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a job: its status, progress, inputs, outputs and error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			j, raw, err := c.GetJob(cmd.Context(), name)
			if err != nil {
				return err
			}
			if web {
				page := c.BaseURL() + "/#/jobs/" + url.PathEscape(j.Name)
				if s, ok := j.Services["Studio"]; ok && s.Endpoint != "" {
					page = s.Endpoint
				}
				return showPage(cmd, page)
			}
			return g.print(cmd.OutOrStdout(), raw, jobColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	addWeb(cmd, &web)
	requireName(cmd, "name")
	return cmd
}

func jobList(g *globals) *cobra.Command {
	var max int
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListJobs(cmd.Context(), "", "")
			if err != nil {
				return err
			}
			if !all {
				var jobs []json.RawMessage
				if err := json.Unmarshal(raw, &jobs); err != nil {
					return fmt.Errorf("decode server answer: %w", err)
				}
				if max >= 0 && len(jobs) > max {
					if raw, err = json.Marshal(jobs[:max]); err != nil {
						return err
					}
				}
			}
			return g.print(cmd.OutOrStdout(), raw, jobColumns...)
		},
	}
	cmd.Flags().IntVarP(&max, "max-results", "r", 50, "list at most this many jobs")
	cmd.Flags().BoolVar(&all, "all-results", false, "list every job (overrides --max-results)")
	return cmd
}

func jobStream(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Print a job's driver log and progress until it ends (non-zero exit when it failed or was canceled)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			return newStreamer(c, cmd).run(cmd.Context(), name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	requireName(cmd, "name")
	return cmd
}

func jobCancel(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "cancel",
		Short: "Cancel a job: its running mini-batches stop and it ends Canceled",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			_, raw, err := c.CancelJob(cmd.Context(), name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, jobColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	requireName(cmd, "name")
	return cmd
}

// jobDownload writes each output to <download-path>/named-outputs/<output>/ and, with
// --all, the job's logs to <download-path>/artifacts/, where `az ml job download --all`
// puts a job's logs (artifacts/azureml-logs, artifacts/logs).
func jobDownload(g *globals) *cobra.Command {
	var name, output, dir string
	var all bool
	cmd := &cobra.Command{
		Use:   "download",
		Short: "Download a job's outputs to <download-path>/named-outputs/<output> (--all: and its logs to <download-path>/artifacts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && output != "" {
				return diag.New(diag.BadArgument, "give --output-name or --all, not both")
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			outputs := []string{output}
			if output == "" {
				j, _, err := c.GetJob(ctx, name)
				if err != nil {
					return err
				}
				outputs = outputs[:0]
				for o := range j.Outputs {
					outputs = append(outputs, o)
				}
				sort.Strings(outputs)
			}
			for _, o := range outputs {
				dst := filepath.Join(dir, "named-outputs", o)
				if err := downloadOutput(ctx, c, name, o, dst); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Downloaded output %s of job %s to %s\n", o, name, dst)
			}
			if all {
				dst := filepath.Join(dir, "artifacts")
				if err := downloadOutput(ctx, c, name, logsOutput, dst); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Downloaded the logs of job %s to %s\n", name, dst)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	cmd.Flags().StringVar(&output, "output-name", "", "the output to download (default: every output; a model batch job's is score)")
	cmd.Flags().StringVarP(&dir, "download-path", "p", ".", "the folder to download into")
	cmd.Flags().BoolVar(&all, "all", false, "download every output and the job's logs")
	requireName(cmd, "name")
	return cmd
}

// downloadOutput extracts one output's tar stream into dst. Files already there are
// overwritten and others are kept, as az does; nothing outside dst is touched.
func downloadOutput(ctx context.Context, c *client.Client, job, output, dst string) error {
	rc, err := c.DownloadJobOutput(ctx, job, output)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := archive.Extract(tar.NewReader(rc), dst); err != nil {
		return fmt.Errorf("download output %s of job %s to %s: %w", output, job, dst, err)
	}
	return nil
}
