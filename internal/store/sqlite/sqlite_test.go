package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.RunContractTests(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "berth.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSurvivesKill9 writes from a child process that is then killed with SIGKILL, and
// reopens the file: what the child committed is there.
func TestSurvivesKill9(t *testing.T) {
	if path := os.Getenv("BERTH_SQLITE_CHILD"); path != "" {
		s, err := Open(path)
		if err != nil {
			os.Exit(2)
		}
		if err := s.CreateEndpoint(context.Background(), &store.Endpoint{Name: "committed", PrimaryKey: "k"}); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("written\n")
		select {} // wait to be killed
	}
	path := filepath.Join(t.TempDir(), "berth.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesKill9$")
	cmd.Env = append(os.Environ(), "BERTH_SQLITE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := out.Read(buf); err != nil || string(buf[:7]) != "written" {
		t.Fatalf("child did not write: %q %v", buf, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.GetEndpoint(context.Background(), "committed")
	if err != nil || e.PrimaryKey != "k" {
		t.Fatalf("after kill -9: %+v %v", e, err)
	}
}

// TestConstraintErrorsByCode checks that constraint violations are recognised by the
// driver's result code, and that a message merely mentioning one is not.
func TestConstraintErrorsByCode(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.CreateEndpoint(ctx, &store.Endpoint{Name: "ep"})
	_, dup := s.db.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES ('ep', x'', '{}', '{}', '', '', '', NULL, 0, '', '')`)
	_, fk := s.db.ExecContext(ctx, `INSERT INTO deployments (`+deploymentCols+`) VALUES ('none', 'd', x'', '', '', '', NULL, 0, '', NULL, '', '')`)
	text := errors.New("UNIQUE constraint failed: FOREIGN KEY constraint failed")
	for _, c := range []struct {
		name       string
		err        error
		unique, fk bool
	}{
		{"duplicate primary key", dup, true, false},
		{"missing endpoint", fk, false, true},
		{"text only", text, false, false},
		{"wrapped duplicate", fmt.Errorf("create: %w", dup), true, false},
		{"nil", nil, false, false},
	} {
		if isUnique(c.err) != c.unique || isForeignKey(c.err) != c.fk {
			t.Errorf("%s (%v): unique %v foreign key %v, want %v %v", c.name, c.err, isUnique(c.err), isForeignKey(c.err), c.unique, c.fk)
		}
	}
}
