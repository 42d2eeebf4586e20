package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderDLQPrefix starts every header a stage adds when it dead-letters a
// message; redrive strips them.
const HeaderDLQPrefix = "Autonomos-Dlq-"

// HeaderRedrivenFrom names the DLQ sequence a redriven message came from.
const HeaderRedrivenFrom = "Autonomos-Redriven-From"

// DeadLetterEntry is one message of the DLQ stream as operators see it.
type DeadLetterEntry struct {
	Seq      uint64          `json:"seq"` // sequence in the DLQ stream
	Tenant   string          `json:"tenant"`
	Stage    string          `json:"stage"`
	Reason   string          `json:"reason"`
	Subject  string          `json:"subject"`  // original subject ("" when it had none)
	Sequence uint64          `json:"sequence"` // original stream sequence (0 when it had none)
	Attempts int             `json:"attempts"`
	Consumer string          `json:"consumer,omitempty"`
	TraceID  string          `json:"trace_id"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data"` // the payload; a JSON string when it is not JSON
	header   nats.Header
	raw      []byte
}

// Header is one header of the dead letter as it was stored.
func (e *DeadLetterEntry) Header(key string) string { return e.header.Get(key) }

// Redrivable says whether the dead letter carries its original message (a
// canonical or raw event with its subject), which redrive republishes.
// Mapping-stage dead letters hold a source record and the mapping errors
// instead: fix the mapping and sync or re-upload the source.
func (e *DeadLetterEntry) Redrivable() error {
	if e.Subject == "" {
		return errors.New("not redrivable: the dead letter has no original subject (a mapping-stage record: redriven by re-mapping where the connectors run, or re-sync or re-upload the source)")
	}
	toks := strings.Split(e.Subject, ".")
	if len(toks) < 3 || (toks[0] != "canonical" && toks[0] != "raw") || toks[1] != e.Tenant {
		return fmt.Errorf("not redrivable: original subject %q is not a canonical or raw subject of tenant %s", e.Subject, e.Tenant)
	}
	return nil
}

// RedriveFailure names a dead letter that was not redriven, and why.
type RedriveFailure struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

// RedriveResult is what a redrive did.
type RedriveResult struct {
	Redriven int              `json:"redriven"` // dead letters republished and deleted from the DLQ
	Failed   []RedriveFailure `json:"failed"`
}

// DLQ reads and redrives the DLQ stream. It is safe for concurrent use.
// Every method takes a tenant: "" means every tenant (operators on the
// command line); otherwise only that tenant's dead letters are visible, and
// another tenant's sequence is reported as not found.
type DLQ struct {
	js    jetstream.JetStream
	remap Remap
}

// Remap turns a mapping-stage dead letter (a source record, no original
// message) into the canonical event message to publish instead, with the
// mapping in force now; an error says why not (the dead letter stays).
type Remap func(ctx context.Context, e *DeadLetterEntry) (*nats.Msg, error)

// NewDLQ returns a DLQ reader on js; the DLQ stream must exist (Ensure).
// With remap, Redrive also redrives mapping-stage dead letters through it.
func NewDLQ(js jetstream.JetStream, remap Remap) *DLQ { return &DLQ{js: js, remap: remap} }

func dlqFilter(tenant string) (string, error) {
	if tenant == "" {
		return "dlq.>", nil
	}
	if err := check("tenant", tenant); err != nil {
		return "", err
	}
	return DLQFilter(tenant), nil
}

// List returns up to limit dead letters, newest first, with a DLQ sequence
// below before (0: from the newest). next is the cursor of the following
// page (0 when there is none).
func (q *DLQ) List(ctx context.Context, tenant string, limit int, before uint64) (entries []DeadLetterEntry, next uint64, err error) {
	filter, err := dlqFilter(tenant)
	if err != nil {
		return nil, 0, err
	}
	if limit <= 0 {
		limit = 100
	}
	// Keep the newest limit+1 below the cursor (the DLQ is bounded by age).
	var ring []DeadLetterEntry
	_, err = ScanStream(ctx, q.js, StreamDLQ, ScanOptions{Filters: []string{filter}}, func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		if before > 0 && md.Sequence.Stream >= before {
			return errStop
		}
		ring = append(ring, entryOf(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data(), md.Timestamp))
		if len(ring) > limit+1 {
			ring = ring[1:]
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, 0, fmt.Errorf("dlq list: %w", err)
	}
	slices.Reverse(ring)
	if len(ring) > limit {
		ring = ring[:limit]
		next = ring[limit-1].Seq
	}
	if ring == nil {
		ring = []DeadLetterEntry{}
	}
	return ring, next, nil
}

var errStop = errors.New("stop")

// Get returns one dead letter by its DLQ sequence; ErrNotFound when there is
// none (or it belongs to another tenant).
func (q *DLQ) Get(ctx context.Context, tenant string, seq uint64) (*DeadLetterEntry, error) {
	if _, err := dlqFilter(tenant); err != nil {
		return nil, err
	}
	s, err := q.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("dlq get %d: %w", seq, err)
	}
	if tenant != "" && !strings.HasPrefix(m.Subject, "dlq."+tenant+".") {
		return nil, ErrNotFound
	}
	e := entryOf(m.Sequence, m.Subject, m.Header, m.Data, m.Time)
	return &e, nil
}

func entryOf(seq uint64, subject string, h nats.Header, data []byte, t time.Time) DeadLetterEntry {
	e := DeadLetterEntry{Seq: seq, Stage: h.Get(HeaderDLQStage), Reason: h.Get(HeaderDLQReason),
		Subject: h.Get(HeaderDLQSubject), TraceID: h.Get(HeaderDLQTrace), Consumer: h.Get(HeaderDLQPrefix + "Consumer"),
		Time: t.UTC(), header: h, raw: data}
	if toks := strings.Split(subject, "."); len(toks) >= 3 {
		e.Tenant = toks[1]
		if e.Stage == "" {
			e.Stage = toks[2]
		}
	}
	e.Sequence, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	e.Attempts, _ = strconv.Atoi(h.Get(HeaderDLQAttempts))
	if ts, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime)); err == nil {
		e.Time = ts
	}
	if json.Valid(data) && len(data) > 0 {
		e.Data = json.RawMessage(data)
	} else {
		e.Data, _ = json.Marshal(string(data))
	}
	return e
}

// Redrive republishes the original message of each dead letter of seqs (or
// of every dead letter of the tenant when all is set) to its original
// subject, with its original headers minus the DLQ ones, and deletes the dead
// letter once the stream has accepted the message. Several dead letters of
// one original message (each durable consumer dead-letters it on its own)
// are republished once. Dead letters that cannot be redriven are reported in
// Failed with the reason and stay in the DLQ.
func (q *DLQ) Redrive(ctx context.Context, tenant string, seqs []uint64, all bool) (RedriveResult, error) {
	res := RedriveResult{Failed: []RedriveFailure{}}
	var entries []*DeadLetterEntry
	if all {
		filter, err := dlqFilter(tenant)
		if err != nil {
			return res, err
		}
		_, err = ScanStream(ctx, q.js, StreamDLQ, ScanOptions{Filters: []string{filter}}, func(m jetstream.Msg) error {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			e := entryOf(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data(), md.Timestamp)
			entries = append(entries, &e)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("dlq redrive: %w", err)
		}
	} else {
		for _, seq := range seqs {
			e, err := q.Get(ctx, tenant, seq)
			if errors.Is(err, ErrNotFound) {
				res.Failed = append(res.Failed, RedriveFailure{Seq: seq, Reason: "not found"})
				continue
			}
			if err != nil {
				return res, err
			}
			entries = append(entries, e)
		}
	}
	s, err := q.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return res, fmt.Errorf("dlq: %w", err)
	}
	type orig struct {
		subject string
		seq     uint64
	}
	published := map[orig]bool{}
	for _, e := range entries {
		if e.Subject == "" && e.Stage == "mapping" && q.remap != nil {
			m, err := q.remap(ctx, e)
			if err != nil {
				res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: "remap: " + err.Error()})
				continue
			}
			m.Header.Set(HeaderRedrivenFrom, strconv.FormatUint(e.Seq, 10))
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("redrive-%s-0-%d", e.Tenant, e.Seq))
			if _, err := q.js.PublishMsg(ctx, m); err != nil {
				res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: "publish: " + err.Error()})
				continue
			}
			if err := s.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: "republished, but not deleted from the DLQ: " + err.Error()})
				continue
			}
			res.Redriven++
			continue
		}
		if err := e.Redrivable(); err != nil {
			res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: err.Error()})
			continue
		}
		key := orig{e.Subject, e.Sequence}
		if !published[key] || e.Sequence == 0 {
			m := nats.NewMsg(e.Subject)
			m.Data = e.raw
			for k, vs := range e.header {
				if strings.HasPrefix(k, HeaderDLQPrefix) || k == jetstream.MsgIDHeader {
					continue
				}
				m.Header[k] = vs
			}
			m.Header.Set(HeaderRedrivenFrom, strconv.FormatUint(e.Seq, 10))
			// A retried redrive of the same dead letter is de-duplicated by
			// the stream; the original event id is not reused, since the
			// stream may still remember it and drop the message.
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("redrive-%s-%d-%d", e.Tenant, e.Sequence, e.Seq))
			if _, err := q.js.PublishMsg(ctx, m); err != nil {
				res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: "publish: " + err.Error()})
				continue
			}
			published[key] = true
		}
		if err := s.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			res.Failed = append(res.Failed, RedriveFailure{Seq: e.Seq, Reason: "republished, but not deleted from the DLQ: " + err.Error()})
			continue
		}
		res.Redriven++
	}
	return res, nil
}
