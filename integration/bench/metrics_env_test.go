package main

import "os"

// The benchmark's test run starts several `stratus serve` replicas on one
// machine and reads the GC counters from /metrics on their public port:
// give them no separate metrics listener (the default :9090 would clash)
// and /metrics on the main port. Package-level because startProc passes
// the environment through; the bench's own flags are the cleaner home.
var (
	_ = os.Setenv("STRATUS_METRICS_ADDR", "off")
	_ = os.Setenv("STRATUS_METRICS_MAIN_PORT", "true")
)
