// Package strictyaml reads verdict's reviewed spec files (alarm specs, rollout and
// split specs) the one way they are all read: strictly, so that a misspelt field is
// an error rather than a silently unset one, and with errors that name the file.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Decode decodes the YAML document b into a new T. A field T does not have is an
// error, and so is an empty document: "empty <what>".
func Decode[T any](b []byte, what string) (*T, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var v T
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty " + what)
		}
		return nil, fmt.Errorf("decode yaml: %w", err)
	}
	return &v, nil
}

// Parse is Decode followed by defaults and check: what a spec's Parse function
// does. check validates the defaulted value (and resolves what it refers to, if
// anything).
func Parse[T any](b []byte, what string, defaults func(*T), check func(*T) error) (*T, error) {
	v, err := Decode[T](b, what)
	if err != nil {
		return nil, err
	}
	defaults(v)
	if err := check(v); err != nil {
		return nil, err
	}
	return v, nil
}

// Load reads the file at path and parses its contents. Its errors say which: "pkg:
// read <what>: …" when the file cannot be read, "pkg: <what> <path>: …" when parse
// fails.
func Load[T any](path, pkg, what string, parse func([]byte) (*T, error)) (*T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", pkg, what, err)
	}
	v, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", pkg, what, path, err)
	}
	return v, nil
}
