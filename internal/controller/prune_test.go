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
