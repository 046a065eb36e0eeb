package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Connection is a workspace connection: where a service is and the credentials for it.
type Connection struct {
	Name        string            `json:"name"`
	Type        string            `json:"type,omitempty"`
	Target      string            `json:"target,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Masked is the connection as `show` prints it: credential values never leave the server.
func (c Connection) Masked() Connection {
	m := c
	m.Credentials = map[string]string{}
	for k := range c.Credentials {
		m.Credentials[k] = "***"
	}
	return m
}

var connectionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// PutConnection stores a connection, its credentials sealed with the server's key.
func (r *Registry) PutConnection(ctx context.Context, conn Connection) error {
	if !connectionName.MatchString(conn.Name) {
		return &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("connection name %q must be 1 to 255 letters, digits, '-' or '_'", conn.Name)}
	}
	if r.sealer == nil {
		return diag.New(diag.InternalServerError, "this server has no secret key configured")
	}
	creds, err := json.Marshal(conn.Credentials)
	if err != nil {
		return err
	}
	sealed, err := r.sealer.Seal(creds)
	if err != nil {
		return err
	}
	public := conn
	public.Credentials = nil
	pub, err := json.Marshal(public)
	if err != nil {
		return err
	}
	return r.store.PutConnection(ctx, &store.Connection{Name: conn.Name, Public: pub, Sealed: sealed})
}

// GetConnection returns a connection with its credentials opened.
func (r *Registry) GetConnection(ctx context.Context, name string) (Connection, error) {
	rec, err := r.store.GetConnection(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, &diag.Error{Code: diag.ResourceNotFound, Target: name,
			Message: fmt.Sprintf("connection %q does not exist: create it with `berth connection create -n %s --credential key=value`", name, name)}
	}
	if err != nil {
		return Connection{}, err
	}
	var conn Connection
	if err := json.Unmarshal(rec.Public, &conn); err != nil {
		return Connection{}, fmt.Errorf("read connection %q: %w", name, err)
	}
	if r.sealer == nil {
		return Connection{}, diag.New(diag.InternalServerError, "this server has no secret key configured")
	}
	plain, err := r.sealer.Open(rec.Sealed)
	if err != nil {
		return Connection{}, fmt.Errorf("open the credentials of connection %q (was the data dir's secret.key replaced?): %w", name, err)
	}
	return conn, json.Unmarshal(plain, &conn.Credentials)
}

// ListConnections returns every connection, credentials masked.
func (r *Registry) ListConnections(ctx context.Context) ([]Connection, error) {
	recs, err := r.store.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(recs))
	for _, rec := range recs {
		conn, err := r.GetConnection(ctx, rec.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, conn.Masked())
	}
	return out, nil
}

// DeleteConnection deletes a connection.
func (r *Registry) DeleteConnection(ctx context.Context, name string) error {
	err := r.store.DeleteConnection(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		_, err = r.GetConnection(ctx, name)
	}
	return err
}
