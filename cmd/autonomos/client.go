package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// apiClient speaks the public HTTP API of a running AutonomOS.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 0}}
}

type apiError struct {
	Status  int
	Code    string
	Message string
	TraceID string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s (trace %s)", e.Status, e.Code, e.Message, e.TraceID)
}

// do sends a request and decodes a JSON answer into out; it returns the
// response's trace id.
func (c *apiClient) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	trace := resp.Header.Get("X-Trace-Id")
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return trace, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				TraceID string `json:"trace_id"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(b))
		}
		return trace, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, TraceID: trace}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return trace, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return trace, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func (c *apiClient) postJSON(ctx context.Context, path string, in, out any) (string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	return c.do(ctx, http.MethodPost, path, bytes.NewReader(b), "application/json", out)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
}

func (c *apiClient) register(ctx context.Context, tenant, email, password string) error {
	var tr tokenResponse
	if _, err := c.postJSON(ctx, "/api/v1/auth/register", map[string]string{"tenant": tenant, "email": email, "password": password}, &tr); err != nil {
		return err
	}
	c.token = tr.AccessToken
	return nil
}

func (c *apiClient) login(ctx context.Context, email, password string) error {
	var tr tokenResponse
	if _, err := c.postJSON(ctx, "/api/v1/auth/login", map[string]string{"email": email, "password": password}, &tr); err != nil {
		return err
	}
	c.token = tr.AccessToken
	return nil
}

// upload streams a file to the upload endpoint and returns the job id and
// the request's trace id.
func (c *apiClient) upload(ctx context.Context, path, entity, system string) (string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if err := mw.WriteField("entity", entity); err != nil {
				return err
			}
			if system != "" {
				if err := mw.WriteField("system", system); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var out struct {
		JobID string `json:"job_id"`
	}
	trace, err := c.do(ctx, http.MethodPost, "/api/v1/filesource/upload", pr, mw.FormDataContentType(), &out)
	return out.JobID, trace, err
}

type jobView struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	RowsRead  int64  `json:"rows_read"`
	Published int64  `json:"published"`
	Rejected  int64  `json:"rejected"`
	Deleted   int64  `json:"deleted"`
	Total     int64  `json:"total"`
	Done      int64  `json:"done"`
	Message   string `json:"message"`
	Errors    []struct {
		Line   int    `json:"line"`
		Column string `json:"column"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func (c *apiClient) job(ctx context.Context, id string) (*jobView, error) {
	var j jobView
	_, err := c.do(ctx, http.MethodGet, "/api/v1/aoa/jobs/"+url.PathEscape(id), nil, "", &j)
	return &j, err
}

// waitJob polls a job until it finishes, calling progress on each poll.
func (c *apiClient) waitJob(ctx context.Context, id string, progress func(*jobView)) (*jobView, error) {
	for {
		j, err := c.job(ctx, id)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(j)
		}
		switch j.Status {
		case "succeeded", "failed", "cancelled":
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *apiClient) view(ctx context.Context, plural string, q url.Values) ([]map[string]any, error) {
	var out struct {
		Data []map[string]any `json:"data"`
	}
	_, err := c.do(ctx, http.MethodGet, "/api/v1/dcl/views/"+plural+"?"+q.Encode(), nil, "", &out)
	return out.Data, err
}
