package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	. "github.com/berthml/berth/internal/store"
)

// Contract tests of the batch roles: Computes, BatchEndpoints, Jobs.

func testComputes(t *testing.T, s Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	if err := s.PutCompute(ctx, &Compute{Name: "gpu", Spec: json.RawMessage(`{"max_instances":1}`)}); err != nil {
		t.Fatal(err)
	}
	first, err := s.GetCompute(ctx, "gpu")
	if err != nil || string(first.Spec) != `{"max_instances":1}` || first.CreatedAt.Before(before) || first.UpdatedAt.Before(first.CreatedAt) {
		t.Fatalf("get: %+v %v", first, err)
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.PutCompute(ctx, &Compute{Name: "gpu", Spec: json.RawMessage(`{"max_instances":4}`), CreatedAt: old}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCompute(ctx, "gpu")
	if err != nil || string(got.Spec) != `{"max_instances":4}` || !got.CreatedAt.Equal(first.CreatedAt) || got.UpdatedAt.Before(first.UpdatedAt) {
		t.Fatalf("after put over it: %+v %v, want spec replaced and CreatedAt %v kept", got, err, first.CreatedAt)
	}
	if err := s.PutCompute(ctx, &Compute{Name: "cpu"}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListComputes(ctx); err != nil || len(l) != 2 || l[0].Name != "cpu" || l[1].Name != "gpu" {
		t.Fatalf("list: %+v %v", l, err)
	}
	if _, err := s.GetCompute(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := s.DeleteCompute(ctx, "cpu"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCompute(ctx, "cpu"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if l, _ := s.ListComputes(ctx); len(l) != 1 || l[0].Name != "gpu" {
		t.Fatalf("list after delete: %+v", l)
	}
}

func testBatchEndpoints(t *testing.T, s Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	e := &BatchEndpoint{Name: "bep", Spec: json.RawMessage(`{"name":"bep"}`), State: "Succeeded"}
	if err := s.CreateBatchEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBatchEndpoint(ctx, e); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	// Batch and online endpoints are kept apart; the caller keeps their names unique.
	if _, err := s.GetEndpoint(ctx, "bep"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a batch endpoint read as an online one: %v", err)
	}
	got, err := s.GetBatchEndpoint(ctx, "bep")
	if err != nil || string(got.Spec) != `{"name":"bep"}` || got.State != "Succeeded" || got.CreatedAt.Before(before) || got.UpdatedAt.Before(got.CreatedAt) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.GetBatchEndpoint(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateBatchEndpoint(ctx, "bep", func(e *BatchEndpoint) error { e.State = "Deleting"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update with fn error: %v", err)
	}
	if got, _ := s.GetBatchEndpoint(ctx, "bep"); got.State != "Succeeded" {
		t.Fatalf("a failed update wrote: %+v", got)
	}
	up, err := s.UpdateBatchEndpoint(ctx, "bep", func(e *BatchEndpoint) error {
		e.Spec, e.State = json.RawMessage(`{"defaults":{"deployment_name":"blue"}}`), "Deleting"
		e.Name, e.CreatedAt = "renamed", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		return nil
	})
	if err != nil || up.State != "Deleting" || up.Name != "bep" || !up.CreatedAt.Equal(got.CreatedAt) || up.UpdatedAt.Before(got.UpdatedAt) {
		t.Fatalf("update: %+v %v", up, err)
	}
	if again, _ := s.GetBatchEndpoint(ctx, "bep"); string(again.Spec) != `{"defaults":{"deployment_name":"blue"}}` || !again.CreatedAt.Equal(got.CreatedAt) || !again.UpdatedAt.Equal(up.UpdatedAt) {
		t.Fatalf("after update: %+v", again)
	}
	if _, err := s.GetBatchEndpoint(ctx, "renamed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an update renamed the endpoint: %v", err)
	}
	if _, err := s.UpdateBatchEndpoint(ctx, "nope", func(*BatchEndpoint) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.CreateBatchEndpoint(ctx, &BatchEndpoint{Name: "abc"}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListBatchEndpoints(ctx); err != nil || len(l) != 2 || l[0].Name != "abc" || l[1].Name != "bep" {
		t.Fatalf("list: %+v %v", l, err)
	}
	if err := s.DeleteBatchEndpoint(ctx, "abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBatchEndpoint(ctx, "abc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testBatchDeployments(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.PutBatchDeployment(ctx, &BatchDeployment{Endpoint: "bep", Name: "blue"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deployment without endpoint: %v, want ErrNotFound", err)
	}
	// An online endpoint of that name does not hold batch deployments.
	s.CreateEndpoint(ctx, &Endpoint{Name: "online"})
	if err := s.PutBatchDeployment(ctx, &BatchDeployment{Endpoint: "online", Name: "blue"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("batch deployment under an online endpoint: %v, want ErrNotFound", err)
	}
	for _, name := range []string{"bep", "other"} {
		if err := s.CreateBatchEndpoint(ctx, &BatchEndpoint{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	d := &BatchDeployment{Endpoint: "bep", Name: "blue", Spec: json.RawMessage(`{"v":1}`), ModelArtifact: "sha256:m", CodeArtifact: "sha256:c", State: "Creating", Python: "/usr/bin/python3", Warnings: []string{"numpy==1.0 is asked for but 1.24.2 is installed"}}
	if err := s.PutBatchDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	first, err := s.GetBatchDeployment(ctx, "bep", "blue")
	if err != nil || string(first.Spec) != `{"v":1}` || first.ModelArtifact != "sha256:m" || first.CodeArtifact != "sha256:c" || first.State != "Creating" || first.Error != nil || first.Python != "/usr/bin/python3" || len(first.Warnings) != 1 || first.Warnings[0] != d.Warnings[0] || first.CreatedAt.IsZero() {
		t.Fatalf("get: %+v %v", first, err)
	}
	// Put over it replaces every field but keeps CreatedAt.
	d2 := &BatchDeployment{Endpoint: "bep", Name: "blue", Spec: json.RawMessage(`{"v":2}`), ModelArtifact: "sha256:m2", State: "Failed",
		Error: json.RawMessage(`{"code":"X"}`), Python: "/opt/venv/bin/python", CreatedAt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.PutBatchDeployment(ctx, d2); err != nil {
		t.Fatalf("put over an existing deployment: %v", err)
	}
	got, err := s.GetBatchDeployment(ctx, "bep", "blue")
	if err != nil || string(got.Spec) != `{"v":2}` || got.ModelArtifact != "sha256:m2" || got.CodeArtifact != "" || got.State != "Failed" ||
		string(got.Error) != `{"code":"X"}` || got.Python != "/opt/venv/bin/python" || len(got.Warnings) != 0 || !got.CreatedAt.Equal(first.CreatedAt) || got.UpdatedAt.Before(first.UpdatedAt) {
		t.Fatalf("after put over it: %+v %v (first %+v)", got, err, first)
	}
	s.PutBatchDeployment(ctx, &BatchDeployment{Endpoint: "bep", Name: "green"})
	s.PutBatchDeployment(ctx, &BatchDeployment{Endpoint: "other", Name: "abc"})
	if l, err := s.ListBatchDeployments(ctx, "bep"); err != nil || len(l) != 2 || l[0].Name != "blue" || l[1].Name != "green" {
		t.Fatalf("list bep: %+v %v", l, err)
	}
	if l, _ := s.ListBatchDeployments(ctx, ""); len(l) != 3 || l[0].Endpoint != "bep" || l[1].Name != "green" || l[2].Endpoint != "other" {
		t.Fatalf("list all: %+v", l)
	}
	if _, err := s.GetBatchDeployment(ctx, "other", "blue"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := s.DeleteBatchDeployment(ctx, "bep", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := s.DeleteBatchDeployment(ctx, "bep", "green"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBatchDeployment(ctx, "bep", "green"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	// Deleting the endpoint deletes its deployments, not its jobs.
	if err := s.CreateJob(ctx, &Job{Name: "job1", Endpoint: "bep", Deployment: "blue", Status: "Completed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBatchEndpoint(ctx, "bep"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListBatchDeployments(ctx, ""); len(l) != 1 || l[0].Endpoint != "other" {
		t.Fatalf("deployments after endpoint delete: %+v", l)
	}
	if _, err := s.GetBatchDeployment(ctx, "bep", "blue"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deployment of a deleted endpoint: %v", err)
	}
	if j, err := s.GetJob(ctx, "job1"); err != nil || j.Endpoint != "bep" {
		t.Fatalf("job of a deleted endpoint: %+v %v", j, err)
	}
	// A new endpoint of the same name starts without deployments.
	s.CreateBatchEndpoint(ctx, &BatchEndpoint{Name: "bep"})
	if l, _ := s.ListBatchDeployments(ctx, "bep"); len(l) != 0 {
		t.Fatalf("deployments came back with the endpoint's name: %+v", l)
	}
}

// testListJobs checks ListJobs' filters and its newest-first order on the jobs
// testJobs created.
func testListJobs(t *testing.T, s Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		endpoint, deployment string
		want                 []string
	}{
		{"", "", []string{"job-w", "job-x", "job-y", "job-z"}},
		{"ep1", "", []string{"job-w", "job-x", "job-z"}},
		{"ep1", "blue", []string{"job-w", "job-z"}},
		{"ep2", "blue", []string{"job-y"}},
		{"ep2", "green", nil},
		{"none", "", nil},
	} {
		l, err := s.ListJobs(ctx, tc.endpoint, tc.deployment)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, j := range l {
			names = append(names, j.Name)
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("ListJobs(%q, %q) = %v, want %v", tc.endpoint, tc.deployment, names, tc.want)
		}
	}
}

func testJobs(t *testing.T, s Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	// Created in the order z, y, x, w: newest first is w, x, y, z, which name order
	// alone would not give.
	for _, j := range []*Job{
		{Name: "job-z", Endpoint: "ep1", Deployment: "blue", Status: "Completed"},
		{Name: "job-y", Endpoint: "ep2", Deployment: "blue", Status: "Failed"},
		{Name: "job-x", Endpoint: "ep1", Deployment: "green", Status: "Running"},
		{Name: "job-w", Endpoint: "ep1", Deployment: "blue", Status: "NotStarted", Spec: json.RawMessage(`{"input":"/data"}`)},
	} {
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateJob(ctx, &Job{Name: "job-z"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	j, err := s.GetJob(ctx, "job-w")
	if err != nil || j.Endpoint != "ep1" || j.Deployment != "blue" || j.Status != "NotStarted" || string(j.Spec) != `{"input":"/data"}` ||
		j.Progress != nil || j.Error != nil || j.CreatedAt.Before(before) || j.UpdatedAt.Before(j.CreatedAt) || !j.StartedAt.IsZero() || !j.EndedAt.IsZero() {
		t.Fatalf("get: %+v %v", j, err)
	}
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	testListJobs(t, s)
	boom := errors.New("boom")
	if _, err := s.UpdateJob(ctx, "job-w", func(j *Job) error { j.Status = "Running"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update with fn error: %v", err)
	}
	if got, _ := s.GetJob(ctx, "job-w"); got.Status != "NotStarted" {
		t.Fatalf("a failed update wrote: %+v", got)
	}
	started := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	ended := started.Add(90 * time.Second)
	up, err := s.UpdateJob(ctx, "job-w", func(j *Job) error {
		j.Status, j.Progress, j.Error = "Failed", json.RawMessage(`{"files":3}`), json.RawMessage(`{"code":"UserError"}`)
		j.StartedAt, j.EndedAt = started, ended
		j.Name, j.CreatedAt = "renamed", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		return nil
	})
	if err != nil || up.Name != "job-w" || !up.CreatedAt.Equal(j.CreatedAt) || up.UpdatedAt.Before(j.UpdatedAt) {
		t.Fatalf("update: %+v %v", up, err)
	}
	got, err := s.GetJob(ctx, "job-w")
	if err != nil || got.Status != "Failed" || string(got.Progress) != `{"files":3}` || string(got.Error) != `{"code":"UserError"}` ||
		!got.StartedAt.Equal(started) || !got.EndedAt.Equal(ended) || !got.CreatedAt.Equal(j.CreatedAt) || !got.UpdatedAt.Equal(up.UpdatedAt) {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if got.StartedAt.Location() != time.UTC || up.StartedAt.Location() != time.UTC {
		t.Fatalf("times not in UTC: got %v, update returned %v", got.StartedAt, up.StartedAt)
	}
	if _, err := s.GetJob(ctx, "renamed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an update renamed the job: %v", err)
	}
	if _, err := s.UpdateJob(ctx, "nope", func(*Job) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	// An update does not change the order: it is by creation.
	if l, _ := s.ListJobs(ctx, "", ""); len(l) != 4 || l[0].Name != "job-w" || l[3].Name != "job-z" {
		t.Fatalf("list after update: %d jobs, want job-w first and job-z last", len(l))
	}
}

// testBatchCopies checks that callers cannot change stored batch records through the
// values they passed in or got back.
func testBatchCopies(t *testing.T, s Store) {
	ctx := t.Context()
	spec := []byte(`{"a":1}`)
	s.PutCompute(ctx, &Compute{Name: "c", Spec: spec})
	s.CreateBatchEndpoint(ctx, &BatchEndpoint{Name: "e", Spec: spec})
	s.PutBatchDeployment(ctx, &BatchDeployment{Endpoint: "e", Name: "d", Spec: spec})
	s.CreateJob(ctx, &Job{Name: "j", Spec: spec, Progress: spec})
	spec[2] = 'X'
	check := func(when string) {
		t.Helper()
		c, err1 := s.GetCompute(ctx, "c")
		e, err2 := s.GetBatchEndpoint(ctx, "e")
		d, err3 := s.GetBatchDeployment(ctx, "e", "d")
		j, err4 := s.GetJob(ctx, "j")
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		for _, b := range []json.RawMessage{c.Spec, e.Spec, d.Spec, j.Spec, j.Progress} {
			if string(b) != `{"a":1}` {
				t.Fatalf("%s: stored %s", when, b)
			}
		}
	}
	check("after changing what was passed in")

	c, _ := s.GetCompute(ctx, "c")
	e, _ := s.GetBatchEndpoint(ctx, "e")
	d, _ := s.GetBatchDeployment(ctx, "e", "d")
	j, _ := s.GetJob(ctx, "j")
	c.Spec[2], e.Spec[2], d.Spec[2], j.Spec[2], j.Progress[2] = 'X', 'X', 'X', 'X', 'X'
	check("after changing what get returned")

	l, _ := s.ListJobs(ctx, "", "")
	l[0].Spec[2] = 'X'
	bl, _ := s.ListBatchDeployments(ctx, "")
	bl[0].Spec[2] = 'X'
	check("after changing what list returned")

	up, _ := s.UpdateJob(ctx, "j", func(j *Job) error { return nil })
	up.Spec[2] = 'X'
	ue, _ := s.UpdateBatchEndpoint(ctx, "e", func(e *BatchEndpoint) error { return nil })
	ue.Spec[2] = 'X'
	check("after changing what update returned")
}
