package memory

import (
	"testing"

	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.RunContractTests(t, func(t *testing.T) store.Store { return New() })
}
