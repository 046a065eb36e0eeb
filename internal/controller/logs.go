package controller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/berthml/berth/internal/diag"
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

// InstanceLogs returns the last lines of a container log of one instance of the
// deployment, running or stopped; ResourceNotFound names the instances that have logs.
func (c *Controller) InstanceLogs(endpoint, name, container string, index, lines int) ([]byte, error) {
	k := fleet.Key{Endpoint: endpoint, Deployment: name}
	path := c.logFile(k, index, container)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, &diag.Error{Code: diag.ResourceNotFound, Target: strconv.Itoa(index),
			Message: fmt.Sprintf("instance %d of deployment %s/%s has no %s log; instances with logs: %v", index, endpoint, name, container, c.logInstances(k))}
	}
	return logs.Tail(path, lines)
}

// PreviousInstance is the newest instance older than the one whose logs get-logs shows
// by default: the one it replaced, or that ran before a restart.
func (c *Controller) PreviousInstance(endpoint, name string) (int, error) {
	k := fleet.Key{Endpoint: endpoint, Deployment: name}
	all := c.logInstances(k)
	current, ok := c.fleet.LogInstance(k)
	if !ok && len(all) > 0 {
		current = all[len(all)-1]
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i] < current {
			return all[i], nil
		}
	}
	return 0, &diag.Error{Code: diag.ResourceNotFound, Target: name,
		Message: fmt.Sprintf("deployment %s/%s has no instance before instance %d; instances with logs: %v", endpoint, name, current, all)}
}

// logInstances lists the instances of a deployment that have a folder, in order.
func (c *Controller) logInstances(k fleet.Key) []int {
	entries, _ := os.ReadDir(c.instancesDir(k))
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}
