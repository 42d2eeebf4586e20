package filesource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// BucketWatchedFiles records the watch folder's files by tenant and content
// hash (key <tenant>.<sha256>). NewWatcher creates it when missing.
const BucketWatchedFiles = "filesource_files"

// WatchConfig configures the watch folder.
type WatchConfig struct {
	// Dir is the watch folder. Layout: <Dir>/<tenant>/<entity>/*.csv (system
	// filesource) or <Dir>/<tenant>/<system>/<entity>/*.csv; entity is
	// account, opportunity or contact (plural accepted).
	Dir string `yaml:"dir"`
	// Every is the scan interval (default 2s).
	Every time.Duration `yaml:"every"`
	// SpoolDir receives the copy of each file handed to the ingester (the
	// ingester removes its copy; the dropped file stays where it is).
	SpoolDir string `yaml:"spool_dir"`
	// Replicas of the watched-files bucket (3 on a 3-node cluster). Default 1.
	Replicas int `yaml:"replicas"`
}

// WatchedFile is one CSV file of a tenant's watch folder.
type WatchedFile struct {
	Path       string     `json:"path"` // relative to the tenant's folder
	Entity     string     `json:"entity"`
	System     string     `json:"system"`
	Size       int64      `json:"size"`
	ModTime    time.Time  `json:"modified_at"`
	Hash       string     `json:"sha256,omitempty"`
	State      string     `json:"state"` // new, ingesting, ingested, failed
	JobID      string     `json:"job_id,omitempty"`
	IngestedAt *time.Time `json:"ingested_at,omitempty"`
}

// fileRecord is the value under <tenant>.<hash>.
type fileRecord struct {
	Path      string     `json:"path"`
	Entity    string     `json:"entity"`
	System    string     `json:"system"`
	JobID     string     `json:"job_id"`
	State     string     `json:"state"` // claimed, ingesting, ingested, failed
	ClaimedAt time.Time  `json:"claimed_at"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

// Watcher ingests each CSV dropped in the watch folder exactly once per
// content: a file's sha256 is claimed in the filesource_files bucket
// (compare-and-set, so instances sharing a folder do not both take it)
// before a copy is handed to the Ingester, and the job id is recorded. After
// a restart mid-file the ingester resumes its job from the spooled copy;
// a claim whose job vanished is taken again — safe, since event ids are
// deterministic. Safe for concurrent use; Run owns the scanning.
type Watcher struct {
	cfg  WatchConfig
	in   *Ingester
	jobs *streams.JobStore
	kv   jetstream.KeyValue
	log  *slog.Logger

	mu       sync.Mutex
	lastScan time.Time
	lastErr  string
}

// NewWatcher creates the bucket if needed and returns the watcher.
func NewWatcher(ctx context.Context, cfg WatchConfig, js jetstream.JetStream, in *Ingester, jobs *streams.JobStore, log *slog.Logger) (*Watcher, error) {
	if cfg.Dir == "" {
		return nil, errors.New("filesource watch: dir is required")
	}
	if cfg.Every <= 0 {
		cfg.Every = 2 * time.Second
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = filepath.Join(os.TempDir(), "autonomos-watch")
	}
	for _, d := range []string{cfg.Dir, cfg.SpoolDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("filesource watch: %w", err)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketWatchedFiles,
		Description: "watch-folder files by tenant and content hash", History: 1, Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1)})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketWatchedFiles, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, in: in, jobs: jobs, kv: kv, log: log.With("component", "filesource_watch")}, nil
}

// Dir is the watch folder.
func (w *Watcher) Dir() string { return w.cfg.Dir }

// Run scans every Every until ctx ends (then it returns nil).
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Every)
	defer t.Stop()
	for {
		err := w.Scan(ctx)
		w.mu.Lock()
		w.lastScan, w.lastErr = time.Now().UTC(), ""
		if err != nil {
			w.lastErr = err.Error()
		}
		w.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("scan", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Scan ingests every new file of every tenant once.
func (w *Watcher) Scan(ctx context.Context) error {
	ents, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !streams.ValidToken(e.Name()) {
			continue
		}
		files, err := w.files(e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if ctx.Err() != nil {
				return nil
			}
			if err := w.ingestOnce(ctx, e.Name(), f); err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", e.Name(), f.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// files lists a tenant's CSV files in the two layouts (no hashes).
func (w *Watcher) files(tenant string) ([]WatchedFile, error) {
	root := filepath.Join(w.cfg.Dir, tenant)
	var out []WatchedFile
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".csv") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		var system, entity string
		switch len(parts) {
		case 2:
			system, entity = "filesource", parts[0]
		case 3:
			system, entity = parts[0], parts[1]
		default:
			return nil
		}
		e, err := canonical.ParseEntity(entity)
		if err != nil || !streams.ValidToken(system) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, WatchedFile{Path: filepath.ToSlash(rel), Entity: string(e), System: system, Size: fi.Size(), ModTime: fi.ModTime().UTC(), State: "new"})
		return nil
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out, err
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// settled reports whether a file is no longer being written: unchanged for
// a second.
func settled(f WatchedFile) bool { return time.Since(f.ModTime) >= time.Second }

// ingestOnce claims the file's content and hands it to the ingester unless
// that content was ingested (or is being ingested) already.
func (w *Watcher) ingestOnce(ctx context.Context, tenant string, f WatchedFile) error {
	if !settled(f) {
		return nil
	}
	abs := filepath.Join(w.cfg.Dir, tenant, filepath.FromSlash(f.Path))
	hash, err := hashFile(abs)
	if err != nil {
		return err
	}
	key := tenant + "." + hash
	rec := fileRecord{Path: f.Path, Entity: f.Entity, System: f.System, State: "claimed", ClaimedAt: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	rev, err := w.kv.Create(ctx, key, b)
	if err != nil {
		if !isKeyExists(err) {
			return fmt.Errorf("claim: %w", err)
		}
		e, err := w.kv.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read claim: %w", err)
		}
		var cur fileRecord
		_ = json.Unmarshal(e.Value(), &cur)
		if !w.stale(ctx, tenant, key, &cur, e.Revision()) {
			return nil
		}
		// The claim's job vanished (a crash between claim and hand-over, or
		// a job store without it): take the file again.
		if rev, err = w.kv.Update(ctx, key, b, e.Revision()); err != nil {
			return nil // another instance took it
		}
		w.log.Info("re-ingesting a file whose job vanished", "tenant", tenant, "path", f.Path)
	}
	jobID, err := w.handOver(ctx, tenant, abs, f, "")
	if err != nil {
		_ = w.kv.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev))
		return err
	}
	rec.JobID, rec.State = jobID, "ingesting"
	b, _ = json.Marshal(rec)
	if _, err := w.kv.Update(context.WithoutCancel(ctx), key, b, rev); err != nil {
		return fmt.Errorf("record job: %w", err)
	}
	w.log.Info("watch-folder file queued", "tenant", tenant, "path", f.Path, "job_id", jobID)
	return nil
}

// stale settles a claim: ingested or failed ones are final (updated from
// their job); one whose job is running is not stale; one without a job
// after a minute, or whose job vanished, is.
func (w *Watcher) stale(ctx context.Context, tenant, key string, cur *fileRecord, rev uint64) bool {
	if cur.State == "ingested" || cur.State == "failed" {
		return false
	}
	if cur.JobID == "" {
		return time.Since(cur.ClaimedAt) > time.Minute
	}
	j, err := w.jobs.Get(ctx, tenant, cur.JobID)
	if errors.Is(err, streams.ErrNotFound) {
		return true
	}
	if err != nil || !j.Finished() {
		return false
	}
	cur.State = "ingested"
	if j.Status != streams.JobSucceeded {
		cur.State = "failed"
	}
	cur.DoneAt = j.FinishedAt
	b, _ := json.Marshal(cur)
	_, _ = w.kv.Update(ctx, key, b, rev)
	return false
}

// handOver copies the file to the spool and queues it.
func (w *Watcher) handOver(ctx context.Context, tenant, abs string, f WatchedFile, traceID string) (string, error) {
	src, err := os.Open(abs)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(w.cfg.SpoolDir, "watch-*.csv")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(dst.Name())
		return "", err
	}
	if err := dst.Close(); err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	id, err := w.in.IngestFile(ctx, Request{Tenant: tenant, Entity: canonical.Entity(f.Entity), System: f.System, Path: dst.Name(), Name: filepath.Base(f.Path), TraceID: traceID})
	if err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	return id, nil
}

func isKeyExists(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists)
}

// Discover lists a tenant's files with their entity, system, hash and state.
func (w *Watcher) Discover(ctx context.Context, tenant string) ([]WatchedFile, error) {
	out := []WatchedFile{}
	if !streams.ValidToken(tenant) {
		return out, nil
	}
	files, err := w.files(tenant)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		h, err := hashFile(filepath.Join(w.cfg.Dir, tenant, filepath.FromSlash(f.Path)))
		if err != nil {
			continue
		}
		f.Hash = h
		if e, err := w.kv.Get(ctx, tenant+"."+h); err == nil {
			var rec fileRecord
			if json.Unmarshal(e.Value(), &rec) == nil {
				f.JobID, f.State = rec.JobID, rec.State
				if rec.State == "claimed" {
					f.State = "ingesting"
				}
				if j, err := w.jobs.Get(ctx, tenant, rec.JobID); err == nil && j.Finished() {
					f.State, f.IngestedAt = "ingested", j.FinishedAt
					if j.Status != streams.JobSucceeded {
						f.State = "failed"
					}
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// Replay ingests the tenant's discovered files again (only those in paths
// when it is not empty) and returns the queued files with their job ids.
func (w *Watcher) Replay(ctx context.Context, tenant string, paths []string, traceID string) ([]WatchedFile, error) {
	files, err := w.Discover(ctx, tenant)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	var errs []error
	out := []WatchedFile{}
	for _, f := range files {
		if len(want) > 0 && !want[f.Path] {
			continue
		}
		delete(want, f.Path)
		id, err := w.handOver(ctx, tenant, filepath.Join(w.cfg.Dir, tenant, filepath.FromSlash(f.Path)), f, traceID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec := fileRecord{Path: f.Path, Entity: f.Entity, System: f.System, JobID: id, State: "ingesting", ClaimedAt: time.Now().UTC()}
		b, _ := json.Marshal(rec)
		if _, err := w.kv.Put(ctx, tenant+"."+f.Hash, b); err != nil {
			errs = append(errs, err)
		}
		f.JobID, f.State = id, "ingesting"
		out = append(out, f)
	}
	for p := range want {
		errs = append(errs, &canonical.FieldError{Field: "paths", Reason: fmt.Sprintf("%q is not a discovered file", p)})
	}
	return out, errors.Join(errs...)
}

// WatchStatus is the watcher's state for one tenant.
type WatchStatus struct {
	Enabled  bool           `json:"enabled"`
	Folder   string         `json:"folder"` // the tenant's folder
	Layout   []string       `json:"layout"`
	LastScan *time.Time     `json:"last_scan"`
	LastErr  string         `json:"last_error,omitempty"`
	Files    map[string]int `json:"files"` // by state
}

// Status reports the watcher's state for a tenant.
func (w *Watcher) Status(ctx context.Context, tenant string) (*WatchStatus, error) {
	files, err := w.Discover(ctx, tenant)
	if err != nil {
		return nil, err
	}
	st := &WatchStatus{Enabled: true, Folder: filepath.Join(w.cfg.Dir, tenant),
		Layout: []string{"<entity>/*.csv", "<system>/<entity>/*.csv"}, Files: map[string]int{"new": 0, "ingesting": 0, "ingested": 0, "failed": 0}}
	for _, f := range files {
		st.Files[f.State]++
	}
	w.mu.Lock()
	if !w.lastScan.IsZero() {
		t := w.lastScan
		st.LastScan = &t
	}
	st.LastErr = w.lastErr
	w.mu.Unlock()
	return st, nil
}
