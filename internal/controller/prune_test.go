package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// An instance that stops for good keeps its logs but not its copies of model and code,
// so restarts and updates do not fill the disk.
func TestStoppedInstancesFreeTheirFolders(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.deploy("blue")
	folder := func(index int, sub string) string {
		return filepath.Join(h.dir, "instances", "shop", "blue", strconv.Itoa(index), sub)
	}
	if _, err := os.Stat(folder(0, "code")); err != nil {
		t.Fatalf("the running instance has no code copy: %v", err)
	}
	if _, err := h.c.UpdateDeployment(ctx, h.input("blue", "environment_variables: {COLOR: red}")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replaced instance to free its copies", func() bool {
		_, err := os.Stat(folder(0, "code"))
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(folder(0, "azureml-models")); !os.IsNotExist(err) {
		t.Errorf("the replaced instance kept its model copy: %v", err)
	}
	if _, err := os.Stat(folder(0, "logs/storage-initializer.log")); err != nil {
		t.Errorf("the replaced instance lost its log: %v", err)
	}
	if _, err := os.Stat(folder(1, "code")); err != nil {
		t.Errorf("the new instance has no code copy: %v", err)
	}
}

// The logs of stopped instances are capped per deployment: the oldest go first.
func TestStoppedLogsAreCapped(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := filepath.Join(h.dir, "instances", "shop", "blue", "0", "logs")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(old, "inference-server.log")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else {
		f.Truncate(60 << 20) // sparse: counts as 60 MiB without writing it
		f.Close()
	}
	h.deploy("blue") // an earlier server's instance 0; this one starts instance 1
	if _, err := h.c.UpdateDeployment(ctx, h.input("blue", "environment_variables: {COLOR: red}")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the oldest logs to go once the stopped ones pass the cap", func() bool {
		_, err := os.Stat(big)
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(filepath.Join(h.dir, "instances", "shop", "blue", "1", "logs", "storage-initializer.log")); err != nil {
		t.Errorf("the newer stopped instance lost its log: %v", err)
	}
	got, err := h.c.InstanceLogs("shop", "blue", "storage-initializer", 1, 5)
	if err != nil || len(got) == 0 {
		t.Errorf("InstanceLogs of the stopped instance 1: %q %v", got, err)
	}
	if _, err := h.c.InstanceLogs("shop", "blue", "storage-initializer", 0, 5); err == nil {
		t.Errorf("the removed instance 0 still has logs")
	}
	if prev, err := h.c.PreviousInstance("shop", "blue"); err != nil || prev != 1 {
		t.Errorf("PreviousInstance = %d, %v; want 1, the instance the update replaced", prev, err)
	}
}
