package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ScanOptions select a range of one stream for Scan.
type ScanOptions struct {
	// Filters are subject filters (wildcards allowed); empty means every subject.
	Filters []string
	// FromSeq starts at this stream sequence (0: the beginning).
	FromSeq uint64
	// Since starts at messages stored at or after this time (zero: ignored;
	// FromSeq wins when both are set).
	Since time.Time
	// Idle is how long to wait for a message that the server said is pending
	// before giving up; default 5s.
	Idle time.Duration
}

// ScanStream reads the messages of stream that match o in order, with a
// temporary ordered consumer (no durable state, nothing acknowledged), and
// calls fn for each. It stops after the last message that was stored when the
// scan started (messages stored later may be seen or not), when fn returns an
// error (returned as is), or when ctx ends. It returns the stream sequence of
// the last message read (0 when none).
func ScanStream(ctx context.Context, js jetstream.JetStream, stream string, o ScanOptions, fn func(jetstream.Msg) error) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	var infoOpts []jetstream.StreamInfoOpt
	if len(o.Filters) == 1 {
		infoOpts = append(infoOpts, jetstream.WithSubjectFilter(o.Filters[0]))
	}
	info, err := s.Info(ctx, infoOpts...)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	end := info.State.LastSeq
	if end == 0 || (len(o.Filters) == 1 && subjectTotal(info.State.Subjects) == 0) || o.FromSeq > end {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.Filters, InactiveThreshold: 5 * time.Minute}
	switch {
	case o.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.FromSeq
	case !o.Since.IsZero():
		t := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return 0, fmt.Errorf("stream %s: ordered consumer: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	defer it.Stop()
	idle := o.Idle
	if idle <= 0 {
		idle = 5 * time.Second
	}
	var last uint64
	for {
		nctx, cancel := context.WithTimeout(ctx, idle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return last, nil // nothing (more) in range
			}
			return last, fmt.Errorf("stream %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return last, fmt.Errorf("stream %s: %w", stream, err)
		}
		if md.Sequence.Stream > end {
			return last, nil
		}
		last = md.Sequence.Stream
		if err := fn(m); err != nil {
			return last, err
		}
		if md.NumPending == 0 || last == end {
			return last, nil
		}
	}
}

func subjectTotal(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
