// Command bench compares Stratus with the reference registry (CNCF
// Distribution) on the same machine, the same backend and the same
// requests, and reports how close each gets to the backend's own limit.
//
//	go run ./integration/bench -short          # CI size, about 2 minutes
//	go run ./integration/bench -out /tmp/bench # full size, writes results.{json,md}
//
// Everything runs on 127.0.0.1: the backends (a temp dir, MinIO), Redis,
// the servers, and the client, which uses plain net/http so every
// contender receives identical requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// config is what one invocation runs.
type config struct {
	Short    bool
	Out      string
	Backends []string
	Tools    tools
	Timeout  time.Duration
	Rounds   int    // 0: the profile's
	Only     string // run only workloads whose name contains it
	Log      *slog.Logger
}

func main() {
	var (
		cfg      config
		backends string
	)
	flag.BoolVar(&cfg.Short, "short", false, "CI size: small blobs and counts, must finish in about 3 minutes on 2 cores")
	flag.StringVar(&cfg.Out, "out", "bench-results", "directory for results.json and results.md")
	flag.StringVar(&backends, "backends", "filesystem,minio", "comma-separated backends: filesystem, minio")
	flag.StringVar(&cfg.Tools.Stratus, "stratus", "", "stratus binary (default: built from this module)")
	flag.StringVar(&cfg.Tools.Reference, "reference", "", "reference registry binary (default: registry in PATH or ~/.cache/stratus-tools/bin)")
	flag.StringVar(&cfg.Tools.Minio, "minio", "", "minio binary (default: minio in PATH or ~/.cache/stratus-tools/bin)")
	flag.StringVar(&cfg.Tools.Redis, "redis", "", "redis-server binary (default: from PATH)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "hard limit on the whole run (default 6m with -short, 3h otherwise)")
	flag.IntVar(&cfg.Rounds, "rounds", 0, "rounds per workload (default 2)")
	flag.StringVar(&cfg.Only, "only", "", "run only the workloads whose name contains this (e.g. \"concurrent pushes\", \"fine chunked\", \"gc compare\"); default all")
	var env string
	flag.StringVar(&env, "stratus-env", "", "comma-separated KEY=VALUE added to every stratus process's environment (experiments, e.g. GOMEMLIMIT=384MiB)")
	flag.Parse()
	cfg.Backends = strings.Split(backends, ",")
	if env != "" {
		cfg.Tools.StratusEnv = strings.Split(env, ",")
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg)
	if rep != nil {
		fmt.Println(rep.text())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run does a whole benchmark and writes its results into cfg.Out.
func run(ctx context.Context, cfg config) (*Report, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prof := fullProfile()
	mode := "full"
	if cfg.Short {
		prof, mode = shortProfile(), "short"
	}
	if cfg.Rounds > 0 {
		prof.Rounds = cfg.Rounds
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Hour
		if cfg.Short {
			cfg.Timeout = 6 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "stratus-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	tl, err := findTools(ctx, cfg.Tools, cfg.Backends, work, log)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	res := newResults()
	gen := newGenerator(7)
	var runErr error
	for _, b := range cfg.Backends {
		log.Info("backend", "name", b, "mode", mode)
		if err := runBackend(ctx, b, prof, tl, work, gen, res, cfg.Only, log); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("%s: %w", b, err))
			res.fail(b, "backend", "", -1, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	fineChunkedSummary(res, prof, []string{"stratus-1", "stratus-2rr", "reference"})
	rep := &Report{
		Mode:      mode,
		Command:   commandLine(cfg),
		Started:   started.UTC().Format(time.RFC3339),
		Duration:  time.Since(started).Round(time.Second).String(),
		Machine:   machineInfo(),
		Profile:   prof,
		Versions:  versions(ctx, tl),
		GC:        gcAvailable(ctx, tl.Stratus),
		Rows:      res.rows(cfg.Backends, []string{"stratus-1", "stratus-2rr", "reference", "direct"}),
		Errors:    res.errs,
		Backends:  cfg.Backends,
		Contender: contenderDescriptions(),
	}
	if err := rep.write(cfg.Out); err != nil {
		runErr = errors.Join(runErr, err)
	}
	return rep, runErr
}

func commandLine(cfg config) string {
	s := "go run ./integration/bench"
	if cfg.Short {
		s += " -short"
	}
	if b := strings.Join(cfg.Backends, ","); b != "filesystem,minio" {
		s += " -backends " + b
	}
	if cfg.Only != "" {
		s += fmt.Sprintf(" -only %q", cfg.Only)
	}
	if len(cfg.Tools.StratusEnv) > 0 {
		s += " -stratus-env " + strings.Join(cfg.Tools.StratusEnv, ",")
	}
	if cfg.Rounds > 0 {
		s += fmt.Sprintf(" -rounds %d", cfg.Rounds)
	}
	return s + " -out " + cfg.Out
}

func contenderDescriptions() map[string]string {
	return map[string]string{
		"stratus-1":   "one `stratus serve`, in-process sessions",
		"stratus-2rr": "two `stratus serve` replicas sharing storage and a redis-server, behind an in-process round-robin reverse proxy (no affinity)",
		"reference":   "CNCF Distribution registry, redirects off, deletes on, in-memory blob descriptor cache",
		"direct":      "no registry: the same bytes written (and fsynced) / read with the backend's own API; the ceiling",
	}
}

// Install commands for the programs a run needs.
const (
	referenceInstall = "GOBIN=$HOME/.cache/stratus-tools/bin go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
	redisInstall     = "apt-get install -y redis-server"
	minioInstall     = "bash integration/test.sh (or pass -backends filesystem)"
)

// findTools locates (or builds) every program the chosen backends need.
func findTools(ctx context.Context, tl tools, backends []string, work string, log *slog.Logger) (tools, error) {
	var errs []error
	find := func(path *string, name, installHint string) {
		if *path != "" {
			return
		}
		p, err := launch.Find(name, installHint)
		if err != nil {
			errs = append(errs, err)
		}
		*path = p
	}
	find(&tl.Reference, "registry", referenceInstall)
	find(&tl.Redis, "redis-server", redisInstall)
	if slices.Contains(backends, "minio") {
		find(&tl.Minio, "minio", minioInstall)
	}
	if len(errs) > 0 {
		return tl, errors.Join(errs...)
	}
	if tl.Stratus == "" {
		tl.Stratus = filepath.Join(work, "stratus")
		log.Info("building stratus")
		if err := buildStratus(ctx, tl.Stratus); err != nil {
			return tl, err
		}
	}
	return tl, nil
}

// buildStratus builds cmd/stratus of the module this command belongs to,
// without the race detector: the numbers are for the real binary.
func buildStratus(ctx context.Context, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build stratus (or pass -stratus): %w", err)
	}
	gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return fmt.Errorf("finding the stratus module (run from inside the repository, or pass -stratus): %v", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/stratus")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/stratus: %w\n%s", err, b)
	}
	return nil
}
