package numfmt

import (
	"strings"
	"time"
)

// Duration is d the way plans and alarm descriptions show it: 5m rather than
// 5m0s, 1h rather than 1h0m0s.
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
