// Command berth deploys and serves Azure ML style online endpoints on one machine.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthml/berth/internal/cli"
	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C the signals are no longer caught: a second one ends the
	// process at once, even in code that does not watch ctx.
	context.AfterFunc(ctx, stop)
	root := cli.NewRoot(server.NewServeCommand(), inference.NewCommand())
	root.SetArgs(cli.AzArgs(os.Args[1:]))
	cmd, err := root.ExecuteContextC(ctx)
	stop()
	if err != nil {
		cli.PrintError(os.Stderr, err)
		cli.PrintNext(os.Stderr, err, cmd)
		os.Exit(cli.ExitCode(err))
	}
}
