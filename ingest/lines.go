package ingest

import (
	"bufio"
	"errors"
	"io"
)

// lineReader splits input into lines of at most max bytes. It survives what real
// files and request bodies contain: LF or CRLF endings, a last line without a
// newline, a UTF-8 byte order mark, and lines far longer than max, which it reports as
// oversize and skips without holding them in memory.
type lineReader struct {
	br    *bufio.Reader
	max   int
	lines int   // lines returned so far, including blank and oversize ones
	bytes int64 // input bytes consumed so far
	done  bool
}

// line is one input line. data excludes the line terminator and is valid only until
// the next call to next; for an oversize line it holds the first RawKeepBytes only.
type line struct {
	num      int
	data     []byte
	oversize bool
	size     int // length without terminator; exact for oversize lines too
}

func newLineReader(r io.Reader, max int) *lineReader {
	// Room for a max-byte line plus CRLF, so any line that fits is returned whole.
	return &lineReader{br: bufio.NewReaderSize(r, max+2), max: max}
}

// bom is the UTF-8 byte order mark some editors write at the start of a file.
const bom = "\xEF\xBB\xBF"

// next returns the next line, or io.EOF after the last one. Any other error comes
// from the underlying reader.
func (lr *lineReader) next() (line, error) {
	if lr.done {
		return line{}, io.EOF
	}
	chunk, err := lr.br.ReadSlice('\n')
	lr.bytes += int64(len(chunk))
	if errors.Is(err, bufio.ErrBufferFull) {
		return lr.skipOversize(chunk)
	}
	if err != nil {
		if err != io.EOF {
			return line{}, err
		}
		lr.done = true
		if len(chunk) == 0 {
			return line{}, io.EOF
		}
	}
	lr.lines++
	data := trimEOL(chunk)
	if len(data) > lr.max {
		return line{num: lr.lines, data: data[:min(len(data), RawKeepBytes)], oversize: true, size: len(data)}, nil
	}
	if lr.lines == 1 && len(data) >= len(bom) && string(data[:len(bom)]) == bom {
		data = data[len(bom):]
	}
	return line{num: lr.lines, data: data, size: len(data)}, nil
}

// skipOversize consumes the rest of a line that did not fit in the buffer. first is
// the part already read. It keeps the first RawKeepBytes of the line.
func (lr *lineReader) skipOversize(first []byte) (line, error) {
	lr.lines++
	raw := append(make([]byte, 0, RawKeepBytes+2), first[:min(len(first), RawKeepBytes+2)]...)
	size := len(first)
	last := first[len(first)-1]
	for {
		chunk, err := lr.br.ReadSlice('\n')
		lr.bytes += int64(len(chunk))
		size += len(chunk)
		if room := RawKeepBytes + 2 - len(raw); room > 0 {
			raw = append(raw, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			last = chunk[len(chunk)-1]
			continue
		}
		if err != nil && err != io.EOF {
			return line{}, err
		}
		if err == io.EOF {
			lr.done = true
		}
		// Subtract the terminator: "\n", and a "\r" before it, which may have ended
		// the previous chunk.
		if n := len(chunk); n > 0 && chunk[n-1] == '\n' {
			size--
			switch {
			case n >= 2 && chunk[n-2] == '\r':
				size--
			case n == 1 && last == '\r':
				size--
			}
		}
		return line{num: lr.lines, data: raw[:min(size, RawKeepBytes)], oversize: true, size: size}, nil
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// blank reports whether a line holds only spaces and tabs; blank lines are skipped,
// not rejected.
func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
