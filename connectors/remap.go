package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Remapper re-maps mapping-stage dead letters — source records a mapping
// refused — with the mapping in force now, so that after a mapping fix (a
// drift repair, a new version, a rollback) a redrive turns them into
// canonical events instead of asking for the source to be read again.
//
// A connector's dead letter names its connection and object; a file's
// names its ingestion job (header Autonomos-Job), whose system and entity
// choose the mapping. A record the mapping still refuses is an error naming
// the fields, and the dead letter stays. Safe for concurrent use.
type Remapper struct {
	mappings *Mappings
	conns    *Connections
	jobs     *streams.JobStore
}

// NewRemapper returns a remapper; conns or jobs may be nil (then dead
// letters of connectors, or of files, are not remapped).
func NewRemapper(mappings *Mappings, conns *Connections, jobs *streams.JobStore) *Remapper {
	return &Remapper{mappings: mappings, conns: conns, jobs: jobs}
}

// deadRecord is the body of a mapping-stage dead letter (see
// Runner.deadLetter and the filesource's).
type deadRecord struct {
	ConnectionID string         `json:"connection_id"`
	Object       string         `json:"object"`
	File         string         `json:"file"`
	Line         int            `json:"line"`
	Record       map[string]any `json:"record"`
}

// Remap returns the canonical event message of e's record under the
// current mapping.
func (r *Remapper) Remap(ctx context.Context, e *streams.DeadLetterEntry) (*nats.Msg, error) {
	if e.Stage != "mapping" {
		return nil, fmt.Errorf("stage %q is not remapped", e.Stage)
	}
	var d deadRecord
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Record == nil {
		return nil, errors.New("the dead letter holds no source record")
	}
	em := Emitter{Tenant: e.Tenant, TraceID: e.TraceID}
	var m *canonical.Mapping
	switch jobID := e.Header("Autonomos-Job"); {
	case d.ConnectionID != "" && d.Object != "" && jobID == "":
		if r.conns == nil {
			return nil, errors.New("connections are not available here")
		}
		c, err := r.conns.Get(ctx, e.Tenant, d.ConnectionID)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", d.ConnectionID, err)
		}
		em.System, em.ConnectionID = c.System, c.ID
		if m, err = r.mappings.Get(ctx, e.Tenant, c.System, d.Object); err != nil {
			return nil, err
		}
	case jobID != "":
		if r.jobs == nil {
			return nil, errors.New("jobs are not available here")
		}
		j, err := r.jobs.Get(ctx, e.Tenant, jobID)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", jobID, err)
		}
		em.System, em.ConnectionID = j.System, j.ConnectionID
		if m, err = r.mappings.ForEntity(ctx, e.Tenant, j.System, canonical.Entity(j.Entity)); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the dead letter names neither a connection and object nor a job")
	}
	em.Mapping = m
	_, msg, errs := em.Messages(d.Line, d.Record)
	if len(errs) > 0 {
		reason := "mapping v" + strconv.Itoa(m.Version) + " still refuses it:"
		for _, re := range errs {
			if re.Column != "" {
				reason += " " + re.Column + ":"
			}
			reason += " " + re.Reason + ";"
		}
		return nil, errors.New(reason)
	}
	return msg, nil
}
