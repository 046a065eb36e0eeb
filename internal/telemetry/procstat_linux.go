package telemetry

import (
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// procStats sums the CPU seconds (user + system) and resident bytes of pids.
func procStats(pids []int) (cpuSeconds float64, rss int64) {
	page := int64(os.Getpagesize())
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue // exited meanwhile
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
		utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
		stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
		pages, _ := strconv.ParseInt(f[21], 10, 64) // field 24
		cpuSeconds += float64(utime+stime) / clockTicks
		rss += pages * page
	}
	return cpuSeconds, rss
}
