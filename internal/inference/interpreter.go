package inference

import (
	"context"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
)

// discoveryTimeout bounds the search of the machine's interpreters for a missing module.
const discoveryTimeout = 20 * time.Second

// withInterpreterHint adds to a worker's import failure the interpreter of this machine
// that has the missing module, and the command that uses it. Other errors, and import
// failures no other interpreter can fix, are returned as they are.
func withInterpreterHint(ctx context.Context, cfg Config, err error) error {
	de := diag.As(err)
	if de == nil || de.Code != diag.UserScriptImportError {
		return err
	}
	in := instance.MachineInterpreters()
	if cfg.interpreters != nil {
		in = *cfg.interpreters
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	found, ferr := in.FindModule(ctx, cfg.Python, de.Message)
	if ferr != nil {
		return err
	}
	hinted := *de
	hinted.Message = de.Message + ". " + found.Hint()
	return &hinted
}
