//go:build linux

package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listeningPorts returns the TCP ports in LISTEN state whose sockets pid or one of its
// descendants holds.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	for _, p := range append([]int{pid}, descendants(pid)...) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
			}
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			_, port, _ := strings.Cut(fields[1], ":")
			n, _ := strconv.ParseInt(port, 16, 32)
			ports = append(ports, int(n))
		}
		f.Close()
	}
	return ports
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				out = append(out, n)
				out = append(out, descendants(n)...)
			}
		}
	}
	return out
}

// TestNothingListensButTheServer is row 2 of the hardening issue: no instance has a
// port of its own, so nothing scores around the router's key check and admission.
func TestNothingListensButTheServer(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.Atoi(u.Port())
	ports := listeningPorts(t, s.cmd.Process.Pid)
	if len(ports) != 1 || ports[0] != want {
		t.Fatalf("berth serve and its workers listen on %v; want only the server's port %d", ports, want)
	}
}

// duBytes is the size of the files under dir, each file (inode) counted once, as du
// counts hard links, and the files over 1 MiB, for a failure message.
func duBytes(t *testing.T, dir string) (total, logs int64, big []string) {
	t.Helper()
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		if info.Size() > 1<<20 {
			big = append(big, fmt.Sprintf("%s (%d bytes)", path, info.Size()))
		}
		total += info.Size()
		if strings.HasSuffix(path, ".log") {
			logs += info.Size()
		}
		return nil
	})
	return total, logs, big
}

// TestRestartsKeepDiskBounded is row 4: a deployment with a 20 MB model restarted ten
// times and updated once keeps its data dir under twice the model plus logs, and
// get-logs still shows the instance before the newest.
func TestRestartsKeepDiskBounded(t *testing.T) {
	dir := t.TempDir()
	model := make([]byte, 20<<20)
	rand.Read(model)
	writeFiles(t, dir, map[string]string{
		"model/weights.bin": string(model),
		"code/score.py":     "def init():\n    pass\ndef run(data):\n    return data\n",
		"dep.yml":           "name: blue\nendpoint_name: disk\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 1\n",
	})
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-n", "disk")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "--all-traffic")
	for range 10 {
		s.stop()
		s.start()
		eventually(t, 30*time.Second, "blue to serve again", func() bool {
			return strings.TrimSpace(s.ok("online-deployment", "show", "-e", "disk", "-n", "blue", "--query", "instances[0].state", "-o", "tsv")) == "Ready"
		})
	}
	// Each start made an instance of its own: the folders of the ten before it are pruned.
	if entries, _ := os.ReadDir(filepath.Join(s.dataDir, "instances", "disk", "blue")); len(entries) < 2 {
		t.Fatalf("%d instance folders: the restarts did not start new instances", len(entries))
	}
	s.ok("online-deployment", "update", "-e", "disk", "-n", "blue", "--set", "environment_variables.X=1")
	total, logs, big := duBytes(t, s.dataDir)
	if limit := 2*int64(len(model)) + logs + 1<<20; total > limit {
		t.Errorf("the data dir holds %d bytes after 10 restarts and an update; want under 2 × the model + logs + 1 MiB = %d; large files:\n%s",
			total, limit, strings.Join(big, "\n"))
	}
	if out := s.ok("online-deployment", "get-logs", "-e", "disk", "-n", "blue", "--previous"); strings.TrimSpace(out) == "" {
		t.Error("get-logs --previous shows nothing: the logs of the instance before the newest are gone")
	}
}

// TestCtrlCStopsTheCLI is row 10: the CLI stops on Ctrl-C while it waits for a long
// deployment, and tells what goes on without it.
func TestCtrlCStopsTheCLI(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"code/score.py": "import time\ndef init():\n    time.sleep(30)\ndef run(data):\n    return data\n",
		"dep.yml":       "name: slow\nendpoint_name: ctrlc\nmodel: {path: ./code}\ncode_configuration: {code: ./code, scoring_script: score.py}\ninstance_count: 1\n",
	})
	s := startServer(t, "")
	s.ok("online-endpoint", "create", "-n", "ctrlc")
	cmd := exec.Command(berthBin, "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"))
	cmd.Env = append(os.Environ(), "BERTH_DATA_DIR="+s.dataDir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(out.String(), "berth online-deployment show -e ctrlc -n slow") {
			t.Errorf("after Ctrl-C the CLI exited with %v and said:\n%s\nwant a non-zero exit and how to follow the deployment", err, out.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the CLI still ran 5 s after Ctrl-C:\n%s", out.String())
	}
	t.Logf("stopped %s after Ctrl-C:\n%s", time.Since(start).Round(time.Millisecond), out.String())
}

// TestWorkersReadInPs: `ps` shows a worker as the worker script, the scoring script and
// the instance it belongs to, not as the worker's whole source.
func TestWorkersReadInPs(t *testing.T) {
	s := startServer(t, "")
	deployQuickstart(t, s)
	pids := workerPIDs(t, s, "quickstart", "blue")
	if len(pids) == 0 {
		t.Fatal("no worker found")
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
	cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
	if !strings.Contains(cmdline, "berth_worker.py ") || !strings.HasSuffix(cmdline, "--endpoint quickstart --deployment blue --instance 0") || len(cmdline) > 500 {
		t.Errorf("a worker's command line: %q", cmdline)
	}
}
