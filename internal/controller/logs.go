package controller

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/stage"
)

// instanceDir is the folder of one instance.
func (c *Controller) instanceDir(k fleet.Key, index int) string {
	return filepath.Join(c.instancesDir(k), strconv.Itoa(index))
}

// logFile is the log of one container of one instance.
func (c *Controller) logFile(k fleet.Key, index int, container string) string {
	return stage.LogFile(c.instanceDir(k, index), container)
}

// Logs returns the last lines of a container log of the deployment (see LogPath);
// nothing when no instance has written one yet.
func (c *Controller) Logs(endpoint, name, container string, lines int) ([]byte, error) {
	path := c.LogPath(endpoint, name, container)
	if path == "" {
		return nil, nil
	}
	return logs.Tail(path, lines)
}

// LogPath returns the log file of the deployment's most telling instance for a
// container ("inference-server" or "storage-initializer"): the one being rolled out,
// else the first serving one, else the newest folder; "" when there is none.
func (c *Controller) LogPath(endpoint, name, container string) string {
	k := fleet.Key{Endpoint: endpoint, Deployment: name}
	if index, ok := c.fleet.LogInstance(k); ok {
		return c.logFile(k, index, container)
	}
	entries, err := os.ReadDir(c.instancesDir(k))
	if err != nil {
		return ""
	}
	best := -1
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > best {
			best = n
		}
	}
	if best < 0 {
		return ""
	}
	return c.logFile(k, best, container)
}
