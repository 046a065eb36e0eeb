package process

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// canWatchMemory reports whether treeRSS can measure memory on this system.
const canWatchMemory = true

// treeRSS sums the resident memory of the root processes and all their descendants (a
// worker's children run in process groups of their own, so the tree is walked by
// parent pid).
func treeRSS(roots []int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	page := int64(os.Getpagesize())
	type proc struct {
		ppid int
		rss  int64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: fields start after it.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])             // field 4: ppid
		rss, _ := strconv.ParseInt(f[21], 10, 64) // field 24: rss in pages
		procs[pid] = proc{ppid, rss * page}
	}
	in := map[int]bool{}
	for _, r := range roots {
		in[r] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	var total int64
	for pid := range in {
		total += procs[pid].rss
	}
	return total
}
