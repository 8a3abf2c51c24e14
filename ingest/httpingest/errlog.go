package httpingest

import "time"

// failureLogEvery is how often a run of failed commits is logged: a full disk refuses
// every request for as long as it lasts, and a line per request would flood the log
// (often on the same disk). Every failure is still counted
// (verdict_ingest_sink_errors_total) and answered 503.
const failureLogEvery = 10 * time.Second
