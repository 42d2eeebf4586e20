package agents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// rawIdle is how long a RAW scan waits for a record it knows is there
// before it concludes the stream lost it (limits retention).
const rawIdle = 5 * time.Second

// scanRaw calls fn with each message of subj in RAW whose stream sequence
// is in [from, to], in order. It reads with an ordered consumer, so it
// holds nothing on the server once done.
func scanRaw(ctx context.Context, js jetstream.JetStream, subj string, from, to uint64, fn func(msg jetstream.Msg, seq uint64) error) error {
	if from > to {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, streams.StreamRaw, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return fmt.Errorf("read %s: %w", subj, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", subj, err)
	}
	defer it.Stop()
	for {
		nctx, cancel := context.WithTimeout(ctx, rawIdle)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
				return nil // nothing more within the wait: the rest was removed
			}
			return fmt.Errorf("read %s: %w", subj, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := meta.Sequence.Stream
		if seq > to {
			return nil
		}
		if err := fn(msg, seq); err != nil {
			return err
		}
		if seq == to {
			return nil
		}
	}
}

// lastRawSeq is the stream sequence of the last message on subj; 0 when
// there is none.
func lastRawSeq(ctx context.Context, js jetstream.JetStream, subj string) (uint64, error) {
	stream, err := js.Stream(ctx, streams.StreamRaw)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", streams.StreamRaw, err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last of %s: %w", subj, err)
	}
	return last.Sequence, nil
}
