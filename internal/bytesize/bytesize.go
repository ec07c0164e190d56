// Package bytesize renders byte counts for people (`stratus gc status`,
// the web UI), in binary units, the way both show sizes.
package bytesize

import "fmt"

// Format renders n in binary units with one decimal: "1023 B", "1.5 KiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
