package spec

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDataCollectorDefaults(t *testing.T) {
	yml := "name: blue\nendpoint_name: shop\ndata_collector:\n  rolling_rate: day\n  collections:\n" +
		"    model_inputs: {enabled: 'True'}\n    model_outputs: {enabled: 'False'}\n    request: {enabled: true, data: {name: mine, version: 3}}\n"
	d, err := DecodeDeployment("test.yml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	dc := d.DataCollector
	if dc.SamplingRate != 1 || dc.RollingRate != "Day" {
		t.Errorf("sampling_rate, rolling_rate = %g, %q; want 1, Day", dc.SamplingRate, dc.RollingRate)
	}
	if diff := cmp.Diff([]string{"model_inputs", "request"}, dc.Enabled()); diff != "" {
		t.Errorf("enabled (-want +got):\n%s", diff)
	}
	want := &CollectionData{Name: "shop-blue-model_inputs", Version: "1",
		Path: "azureml://datastores/workspaceblobstore/paths/modelDataCollector/shop/blue/model_inputs"}
	if diff := cmp.Diff(want, dc.Collections["model_inputs"].Data); diff != "" {
		t.Errorf("model_inputs data (-want +got):\n%s", diff)
	}
	if got := dc.Collections["request"].Data; got.Name != "mine" || got.Version != "3" {
		t.Errorf("request data = %+v, want the spec's name and version kept", got)
	}
	// The stored spec (JSON) decodes to the same collector, "True" strings included.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeDeployment("stored", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dc, back.DataCollector); diff != "" {
		t.Errorf("round trip (-before +after):\n%s", diff)
	}
	var fromJSON Deployment
	if err := json.Unmarshal([]byte(`{"data_collector":{"collections":{"x":{"enabled":"True"},"y":{"enabled":false}}}}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x"}, fromJSON.DataCollector.Enabled()); diff != "" {
		t.Errorf("JSON enabled (-want +got):\n%s", diff)
	}
}
