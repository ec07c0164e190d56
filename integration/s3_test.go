package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// TestS3PushMemoryBounded checks the streaming promise on the real binary
// (built without -race, whose shadow memory would swamp the number): one
// 256 MiB push in 8 MiB chunks keeps the process's peak RSS under 100 MiB,
// whatever the blob size, because an upload holds one part buffer.
func TestS3PushMemoryBounded(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stratus")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/stratus-registry/stratus/cmd/stratus").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := startBinary(t, bin, s3Args(s3test.Start(t), uniquePrefix(t)))
	size := int64(256 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	chunkedPush(t, []string{srv.URL()}, "rss/blob", 5, size, 8<<20)
	peak := peakRSS(t, srv.proc.Pid())
	t.Logf("peak RSS after a %d MiB push in 8 MiB chunks: %d MiB", size>>20, peak>>20)
	if peak > 100<<20 {
		t.Fatalf("peak RSS %d MiB: memory is not bounded by a part", peak>>20)
	}
}

// peakRSS reads VmHWM, the process's peak resident set, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
