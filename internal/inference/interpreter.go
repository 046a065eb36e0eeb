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
	if de == nil {
		return err
	}
	in := instance.MachineInterpreters()
	if cfg.interpreters != nil {
		in = *cfg.interpreters
	}
	return hinted(ctx, in, cfg.Python, de)
}

// hinted is de with the interpreter that has its missing module named, when de is an
// import failure another interpreter of the machine can fix; else de.
func hinted(ctx context.Context, in instance.Interpreters, python string, de *diag.Error) *diag.Error {
	if de.Code != diag.UserScriptImportError {
		return de
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	found, ferr := in.FindModule(ctx, python, de.Message)
	if ferr != nil {
		return de
	}
	h := *de
	h.Message = de.Message + ". " + found.Hint()
	return &h
}
