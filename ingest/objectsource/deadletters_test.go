package objectsource

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/verdictml/verdict/ingest"
)

func TestDirDeadLettersReplaceAnObjectReadAgain(t *testing.T) {
	ctx := context.Background()
	d, err := NewDirDeadLetters(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const obj = "s3://captures/dc/../ep/v5/2026/03/01/10/a.jsonl"
	letter := func(line int, reason string) DeadLetter {
		return DeadLetter{Object: obj, Kind: ingest.KindPrediction, Rejection: ingest.Rejection{Line: line, Class: ingest.ClassInvalidField, Reason: reason, Raw: []byte("x"), Size: 1}}
	}
	// First read: letters for lines 2 and 5, flushed.
	for _, l := range []DeadLetter{letter(2, "first"), letter(5, "first")} {
		if err := d.Put(ctx, []DeadLetter{l}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(ctx, obj); err != nil {
		t.Fatal(err)
	}
	// A read that failed after line 2, then a whole read again.
	if err := d.Put(ctx, []DeadLetter{letter(2, "failed")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, []DeadLetter{letter(2, "again"), letter(5, "again")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx, obj); err != nil {
		t.Fatal(err)
	}
	path := d.Path(obj)
	if !strings.HasPrefix(path, d.dir) || strings.Contains(strings.TrimPrefix(path, d.dir), "/../") {
		t.Fatalf("path %s escapes the directory", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"reason":"again"`) || !strings.Contains(lines[1], `"line":5`) {
		t.Errorf("dead-letter file after reading again:\n%s\nwant exactly the second read's two letters", b)
	}
}
