package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// UploadAccepted is the body of a 202 from POST /api/v1/filesource/upload.
type UploadAccepted struct {
	JobID string `json:"job_id"`
}

// maxFieldBytes bounds a non-file form field.
const maxFieldBytes = 256

// handleUpload streams the multipart "file" part to a spool file under
// <SpoolDir>/<tenant>/ — never holding it in memory — reads the "entity"
// and optional "system" fields (in any order), and hands the file to the
// ingester, answering 202 with the job id.
func (s *Server) handleUpload(c echo.Context) error {
	req := c.Request()
	if s.deps.Ingester == nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable,
			"file ingestion is not enabled on this server (FEATURE_USE_FILESOURCE)")
	}
	if !isMultipart(req) {
		return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type: want multipart/form-data")
	}
	if req.ContentLength > s.cfg.MaxUploadBytes+1<<20 {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "file: larger than %d bytes", s.cfg.MaxUploadBytes)
	}
	st := stateOf(c)
	p := st.principal
	body := st.body
	if body == nil || !body.multipart {
		return internal(errors.New("upload without a prepared multipart body"))
	}
	dir := filepath.Join(s.cfg.SpoolDir, p.Tenant)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return internal(fmt.Errorf("spool dir: %w", err))
	}

	var (
		fields   = map[string]string{}
		problems []string
		spool    string
		name     string
		size     int64
		files    int
		handed   bool
	)
	defer func() {
		if spool != "" && !handed {
			os.Remove(spool)
		}
	}()
	buf := make([]byte, 1<<20)
	for {
		part, err := body.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch fn := part.FormName(); fn {
		case "file":
			files++
			if files > 1 {
				continue // the rest is hashed and discarded by NextPart
			}
			f, err := os.CreateTemp(dir, "upload-*.part")
			if err != nil {
				return internal(fmt.Errorf("spool file: %w", err))
			}
			spool = f.Name()
			n, err := io.CopyBuffer(f, io.LimitReader(part, s.cfg.MaxUploadBytes+1), buf)
			cerr := f.Close()
			size = n
			if err != nil {
				return newError(http.StatusBadRequest, CodeBadRequest, "file: upload interrupted: %v", err)
			}
			if cerr != nil {
				return internal(fmt.Errorf("spool file: %w", cerr))
			}
			if n > s.cfg.MaxUploadBytes {
				return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "file: larger than %d bytes", s.cfg.MaxUploadBytes)
			}
			name = cleanFileName(part.FileName())
		case "entity", "system":
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return newError(http.StatusBadRequest, CodeBadRequest, "%s: multipart body: %v", fn, err)
			}
			if len(v) > maxFieldBytes {
				problems = append(problems, fmt.Sprintf("%s: longer than %d bytes", fn, maxFieldBytes))
				continue
			}
			if _, dup := fields[fn]; dup {
				problems = append(problems, fn+": give the field once")
			}
			fields[fn] = strings.TrimSpace(string(v))
		default:
			// Unknown parts are hashed (they are part of the request) and skipped.
		}
	}

	entity, err := canonical.ParseEntity(fields["entity"])
	if _, given := fields["entity"]; !given {
		problems = append(problems, "entity: is required (account, opportunity or contact)")
	} else if err != nil {
		problems = append(problems, "entity: want account, opportunity or contact (plural accepted), got "+fmt.Sprintf("%q", clip(fields["entity"])))
	}
	system := fields["system"]
	if system == "" {
		system = "filesource"
	}
	if !streams.ValidToken(system) {
		problems = append(problems, fmt.Sprintf("system: want 1-64 of [a-z0-9_-], got %q", clip(system)))
	}
	switch {
	case files == 0:
		problems = append(problems, "file: a file part is required")
	case files > 1:
		problems = append(problems, "file: give exactly one file")
	}
	if len(problems) > 0 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "%s", strings.Join(problems, "; "))
	}

	ctx := req.Context()
	jobID, err := s.deps.Ingester.IngestFile(ctx, FileIngest{Tenant: p.Tenant, Entity: entity, System: system,
		Path: spool, Name: name, Size: size, TraceID: st.traceID})
	if err != nil {
		return fmt.Errorf("ingest upload: %w", err)
	}
	handed = true
	s.log.InfoContext(ctx, "upload accepted", "tenant", p.Tenant, "job_id", jobID, "entity", entity, "bytes", size)
	return c.JSON(http.StatusAccepted, UploadAccepted{JobID: jobID})
}

// cleanFileName keeps the base name of a client's file name, printable and
// at most 255 bytes.
func cleanFileName(n string) string {
	n = filepath.Base(strings.ReplaceAll(n, `\`, "/"))
	n = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, n)
	if n == "." || n == "/" {
		n = ""
	}
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}
