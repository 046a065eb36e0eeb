package sqlite

import (
	"context"
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
