package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// End ends sp with attrs set, and with err recorded as its error status
// when err is not nil. A span that is not recording costs nothing more.
func End(sp trace.Span, err error, attrs ...attribute.KeyValue) {
	if sp.IsRecording() {
		sp.SetAttributes(attrs...)
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
		}
	}
	sp.End()
}
