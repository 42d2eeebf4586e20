package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/autonomos/autonomos/streams"
)

// ConsumerState is one durable consumer's progress as JetStream reports
// it. Consumers are shared by every tenant, so these figures are the
// system's, not one tenant's.
type ConsumerState struct {
	Stream        string     `json:"stream"`
	Name          string     `json:"name"`
	Pending       uint64     `json:"pending"`     // matching messages not yet delivered (the lag)
	AckPending    int        `json:"ack_pending"` // delivered, not yet acknowledged
	Redelivered   int        `json:"redelivered"` // delivered more than once, not yet acknowledged
	MaxAckPending int        `json:"max_ack_pending"`
	Waiting       int        `json:"waiting"` // pull requests waiting: 0 with pending > 0 means nobody pulls
	Stalled       bool       `json:"stalled"` // ack_pending has reached max_ack_pending: delivery has stopped
	LastDelivery  *time.Time `json:"last_delivery"`
}

// monitoredStreams are the streams whose durable consumers are reported.
var monitoredStreams = []string{streams.StreamCanonical, streams.StreamRaw, streams.StreamDrift,
	streams.StreamDLQ, streams.StreamJobs, streams.StreamAudit}

// consumerStates lists the durable consumers of the topology's streams
// (ordered and other ephemeral consumers are left out). A stream that does
// not exist is skipped; any other failure is an error.
func consumerStates(ctx context.Context, js jetstream.JetStream) ([]ConsumerState, error) {
	out := []ConsumerState{}
	for _, name := range monitoredStreams {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable == "" {
				continue
			}
			cs := ConsumerState{Stream: name, Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
				Redelivered: ci.NumRedelivered, MaxAckPending: ci.Config.MaxAckPending, Waiting: ci.NumWaiting,
				LastDelivery: ci.Delivered.Last}
			cs.Stalled = cs.MaxAckPending > 0 && cs.AckPending >= cs.MaxAckPending
			out = append(out, cs)
		}
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return out, nil
}

// dlqDepth counts the messages on DLQ for one tenant (every tenant when
// tenant is ""), by stage.
func dlqDepth(ctx context.Context, js jetstream.JetStream, tenant string) (total int64, byStage map[string]map[string]int64, err error) {
	st, err := js.Stream(ctx, streams.StreamDLQ)
	if err != nil {
		return 0, nil, fmt.Errorf("stream %s: %w", streams.StreamDLQ, err)
	}
	filter := "dlq.>"
	if tenant != "" {
		filter = streams.DLQFilter(tenant)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, nil, fmt.Errorf("stream %s: %w", streams.StreamDLQ, err)
	}
	byStage = map[string]map[string]int64{}
	for subj, n := range info.State.Subjects {
		t, stage, ok := subjectTokens(subj, "dlq")
		if !ok {
			continue
		}
		if byStage[t] == nil {
			byStage[t] = map[string]int64{}
		}
		byStage[t][stage] += int64(n)
		total += int64(n)
	}
	return total, byStage, nil
}

// tail returns up to n of the newest messages of stream matching filter,
// oldest first. It finds the newest matching sequence, then reads windows
// of the stream backwards (each through a short-lived ordered consumer the
// server filters), so it reads about n messages of the filter, not the
// whole stream.
func tail(ctx context.Context, js jetstream.JetStream, stream, filter string, n int, headersOnly bool) ([]jetstream.Msg, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	last, err := st.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return []jetstream.Msg{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last message of %s: %w", filter, err)
	}
	end := last.Sequence
	var out []jetstream.Msg
	window := uint64(max(4*n, 256))
	for round := 0; len(out) < n && end > 0 && round < 12; round++ {
		start := uint64(1)
		if end > window {
			start = end - window + 1
		}
		got, err := readRange(ctx, js, stream, filter, start, end, headersOnly)
		if err != nil {
			return nil, err
		}
		out = append(got, out...)
		end = start - 1
		window *= 8
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// readRange reads the messages matching filter with sequences from start
// to end.
func readRange(ctx context.Context, js jetstream.JetStream, stream, filter string, start, end uint64, headersOnly bool) ([]jetstream.Msg, error) {
	oc, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: start, HeadersOnly: headersOnly, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer deleteOrdered(js, stream, oc)
	info := oc.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil, nil
	}
	mc, err := oc.Messages(jetstream.PullMaxMessages(int(min(info.NumPending, uint64(end-start+1), 500))))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer mc.Stop()
	var out []jetstream.Msg
	for {
		m, err := mc.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if md.Sequence.Stream > end {
			return out, nil
		}
		out = append(out, m)
		if md.NumPending == 0 || md.Sequence.Stream == end {
			return out, nil
		}
	}
}

// jsCollector reads consumer and DLQ state from JetStream at each scrape.
type jsCollector struct {
	js      jetstream.JetStream
	timeout time.Duration

	up, pending, ackPending, redelivered, maxAckPending, stalled, dlq *prometheus.Desc
}

func newJSCollector(js jetstream.JetStream) *jsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("autonomos", "", name), help, labels, nil)
	}
	return &jsCollector{
		js: js, timeout: 3 * time.Second,
		up:            d("jetstream_scrape_up", "1 when JetStream answered this scrape's consumer and DLQ queries, else 0 (and the other JetStream series are absent)."),
		pending:       d("consumer_pending", "Messages matching a durable consumer's filter not yet delivered (its lag).", "stream", "consumer"),
		ackPending:    d("consumer_ack_pending", "Messages delivered to a durable consumer and not yet acknowledged.", "stream", "consumer"),
		redelivered:   d("consumer_redelivered", "Messages redelivered to a durable consumer and not yet acknowledged.", "stream", "consumer"),
		maxAckPending: d("consumer_max_ack_pending", "A durable consumer's MaxAckPending limit.", "stream", "consumer"),
		stalled:       d("consumer_stalled", "1 when a durable consumer's ack_pending has reached its max_ack_pending: JetStream stops delivering to it.", "stream", "consumer"),
		dlq:           d("dlq_depth", "Messages on the DLQ stream, by tenant and stage.", "tenant", "stage"),
	}
}

func (c *jsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.pending, c.ackPending, c.redelivered, c.maxAckPending, c.stalled, c.dlq} {
		ch <- d
	}
}

func (c *jsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	states, err := consumerStates(ctx, c.js)
	var byStage map[string]map[string]int64
	if err == nil {
		_, byStage, err = dlqDepth(ctx, c.js, "")
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range states {
		g(c.pending, float64(s.Pending), s.Stream, s.Name)
		g(c.ackPending, float64(s.AckPending), s.Stream, s.Name)
		g(c.redelivered, float64(s.Redelivered), s.Stream, s.Name)
		g(c.maxAckPending, float64(s.MaxAckPending), s.Stream, s.Name)
		stalled := 0.0
		if s.Stalled {
			stalled = 1
		}
		g(c.stalled, stalled, s.Stream, s.Name)
	}
	for tenant, stages := range byStage {
		for stage, n := range stages {
			g(c.dlq, float64(n), tenant, stage)
		}
	}
}
