// Package filesource ingests delimited text files (CSV) through a mapping
// into RAW and CANONICAL: one raw event and one canonical event per good
// record, and a precise error (line, column, reason) plus a dead letter for
// each bad one, while every good record around it is still ingested.
//
// Contract: the reader streams, so memory stays flat whatever the file size;
// a file is read with its header as line 1, UTF-8 with or without a BOM, with
// ',' ';' or tab delimiters (sniffed from the header), quoted fields with
// embedded newlines and CRLF line ends. Records are published asynchronously
// and counted as published only when JetStream acknowledges them; re-reading
// the same file publishes the same event ids, which the stream drops as
// duplicates, so a job interrupted by a crash is safely re-run from the start.
package filesource
