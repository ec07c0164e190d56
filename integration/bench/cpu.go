package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for that interface on every architecture.
const userHZ = 100

// processCPU is the user + system CPU time process pid has used, all its
// threads together (fields 14 and 15 of /proc/<pid>/stat).
func processCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ")" start with field 3.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// cpuMeter adds up the CPU time of a set of processes between start and
// stop. A process it cannot read makes the measurement void (ok false),
// never a smaller figure.
type cpuMeter struct {
	pids  []int
	start time.Duration
	err   error
}

func startCPU(pids []int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	m.start, m.err = totalCPU(pids)
	return m
}

// stop is the CPU time used since start.
func (m *cpuMeter) stop() (time.Duration, error) {
	if m.err != nil {
		return 0, m.err
	}
	end, err := totalCPU(m.pids)
	if err != nil {
		return 0, err
	}
	return end - m.start, nil
}

func totalCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		c, err := processCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}
