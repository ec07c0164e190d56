package ui

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
)

// Referrer kinds, as the referrers page labels them (data-kind).
const (
	kindSignature = "signature"
	kindSBOM      = "sbom"
	kindScan      = "scan"
	kindOther     = "other"
)

// classify names the kind of a referrer from its artifact type.
func classify(artifactType string) string {
	t := strings.ToLower(strings.TrimSpace(artifactType))
	switch t {
	case "application/vnd.dev.cosign.artifact.sig.v1+json",
		"application/vnd.dev.sigstore.bundle.v0.3+json",
		"application/vnd.dev.sigstore.bundle+json;version=0.3",
		"application/vnd.cncf.notary.signature":
		return kindSignature
	case "application/spdx+json", "text/spdx", "text/spdx+json",
		"application/vnd.cyclonedx+json", "application/vnd.cyclonedx+xml", "application/vnd.cyclonedx":
		return kindSBOM
	case "application/sarif+json":
		return kindScan
	}
	// Trivy reports are attached under aquasec media types
	// (application/vnd.aquasec.trivy.report.sarif.v1, ...json.v1, ...).
	if strings.HasPrefix(t, "application/vnd.aquasec.trivy.") {
		return kindScan
	}
	return kindOther
}

// severities are the order the summary lists counts in.
var severities = []string{"critical", "high", "medium", "low", "unknown"}

// scanSummary is a scan report reduced to counts by severity.
type scanSummary struct {
	Format string // "SARIF" or "Trivy"
	Counts []severityCount
	Total  int
}

type severityCount struct {
	Severity string
	Count    int
}

// errNotAReport: the blob is neither a SARIF log nor a Trivy report.
var errNotAReport = errors.New("not a SARIF or Trivy report")

// report is the union of the fields of a SARIF log and of Trivy's JSON
// output that the summary counts.
type report struct {
	Runs []struct {
		Results []struct {
			Level  string `json:"level"`
			RuleID string `json:"ruleId"`
		} `json:"results"`
		Tool struct {
			Driver struct {
				Rules []struct {
					ID         string `json:"id"`
					Properties struct {
						// Trivy and GitHub put a CVSS-style score here.
						SecuritySeverity json.Number `json:"security-severity"`
					} `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
	} `json:"runs"`
	SchemaVersion json.Number `json:"SchemaVersion"`
	Results       []struct {
		Vulnerabilities []struct {
			Severity string `json:"Severity"`
		} `json:"Vulnerabilities"`
		Misconfigurations []struct {
			Severity string `json:"Severity"`
		} `json:"Misconfigurations"`
	} `json:"Results"`
}

// summarizeScan counts a report's findings by severity. SARIF results
// take their rule's security-severity score when there is one (CVSS
// bands), else their level (error=high, warning=medium, note=low).
func summarizeScan(b []byte) (scanSummary, error) {
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return scanSummary{}, errNotAReport
	}
	counts := map[string]int{}
	var s scanSummary
	switch {
	case rep.Runs != nil:
		s.Format = "SARIF"
		for _, run := range rep.Runs {
			score := map[string]json.Number{}
			for _, rule := range run.Tool.Driver.Rules {
				score[rule.ID] = rule.Properties.SecuritySeverity
			}
			for _, res := range run.Results {
				counts[sarifSeverity(res.Level, score[res.RuleID])]++
			}
		}
	case rep.SchemaVersion != "" || rep.Results != nil:
		s.Format = "Trivy"
		for _, res := range rep.Results {
			for _, v := range res.Vulnerabilities {
				counts[trivySeverity(v.Severity)]++
			}
			for _, m := range res.Misconfigurations {
				counts[trivySeverity(m.Severity)]++
			}
		}
	default:
		return scanSummary{}, errNotAReport
	}
	for _, sev := range severities {
		if n := counts[sev]; n > 0 {
			s.Counts = append(s.Counts, severityCount{sev, n})
			s.Total += n
		}
	}
	sort.SliceStable(s.Counts, func(i, j int) bool { return rank(s.Counts[i].Severity) < rank(s.Counts[j].Severity) })
	return s, nil
}

func rank(sev string) int {
	for i, s := range severities {
		if s == sev {
			return i
		}
	}
	return len(severities)
}

func trivySeverity(s string) string {
	s = strings.ToLower(s)
	if rank(s) < len(severities) {
		return s
	}
	return "unknown"
}

func sarifSeverity(level string, score json.Number) string {
	if f, err := score.Float64(); err == nil && score != "" {
		switch {
		case f >= 9:
			return "critical"
		case f >= 7:
			return "high"
		case f >= 4:
			return "medium"
		case f > 0:
			return "low"
		}
	}
	switch level {
	case "error":
		return "high"
	case "warning", "":
		return "medium" // SARIF's default level is warning
	case "note":
		return "low"
	}
	return "unknown"
}
