package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/store"
)

const jobCols = `name, endpoint, deployment, status, spec, progress, error, created_at, updated_at, started_at, ended_at`

func scanJob(r scanner) (*store.Job, error) {
	var j store.Job
	var created, updated, started, ended string
	var spec, progress, errb []byte
	if err := r.Scan(&j.Name, &j.Endpoint, &j.Deployment, &j.Status, &spec, &progress, &errb, &created, &updated, &started, &ended); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	j.Spec, j.Progress, j.Error = nilIfEmpty(spec), nilIfEmpty(progress), nilIfEmpty(errb)
	j.CreatedAt, j.UpdatedAt = parseTime(created), parseTime(updated)
	j.StartedAt, j.EndedAt = parseTime(started), parseTime(ended)
	return &j, nil
}

// CreateJob stores a new job; store.ErrExists if the name is taken.
func (s *Store) CreateJob(ctx context.Context, j *store.Job) error {
	t := timeText(parseTime(now()))
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		j.Name, j.Endpoint, j.Deployment, j.Status, nonNil(j.Spec), []byte(j.Progress), []byte(j.Error), t, t,
		timeText(j.StartedAt), timeText(j.EndedAt))
	if isUnique(err) {
		return fmt.Errorf("job %q: %w", j.Name, store.ErrExists)
	}
	return err
}

// GetJob returns a job or store.ErrNotFound.
func (s *Store) GetJob(ctx context.Context, name string) (*store.Job, error) {
	return scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE name = ?`, name))
}

// ListJobs returns the jobs of an endpoint (all when endpoint is ""), of one of its
// deployments when deployment is not "", newest first.
func (s *Store) ListJobs(ctx context.Context, endpoint, deployment string) ([]*store.Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs WHERE (? = '' OR endpoint = ?) AND (? = '' OR deployment = ?)
		ORDER BY created_at DESC, name DESC`
	rows, err := s.db.QueryContext(ctx, q, endpoint, endpoint, deployment, deployment)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// UpdateJob applies fn to the stored job in one transaction. The name and creation
// time stay as stored.
func (s *Store) UpdateJob(ctx context.Context, name string, fn func(*store.Job) error) (*store.Job, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE name = ?`, name))
	if err != nil {
		return nil, err
	}
	created := j.CreatedAt
	if err := fn(j); err != nil {
		return nil, err
	}
	j.Name, j.CreatedAt = name, created
	j.UpdatedAt = parseTime(now())
	// Read back as a later GetJob would: UTC, nanoseconds.
	j.StartedAt, j.EndedAt = parseTime(timeText(j.StartedAt)), parseTime(timeText(j.EndedAt))
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET endpoint=?, deployment=?, status=?, spec=?, progress=?, error=?, updated_at=?, started_at=?, ended_at=? WHERE name=?`,
		j.Endpoint, j.Deployment, j.Status, nonNil(j.Spec), []byte(j.Progress), []byte(j.Error), timeText(j.UpdatedAt),
		timeText(j.StartedAt), timeText(j.EndedAt), name); err != nil {
		return nil, err
	}
	return j, tx.Commit()
}
