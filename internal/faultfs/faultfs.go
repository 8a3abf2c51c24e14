// Package faultfs is a pebble filesystem for tests that simulates a disk filling up
// and emptying again: while full, writes fail with ENOSPC and the reported free
// space is what the test says. It wraps pebble's errorfs.
package faultfs

import (
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// FS is the operating system's filesystem with a switchable full disk.
type FS struct {
	*errorfs.FS
	full   atomic.Bool
	free   atomic.Int64 // reported free bytes; negative: the real value
	failed atomic.Int64 // operations failed with ENOSPC
}

// New returns a filesystem that behaves normally until Fill.
func New() *FS {
	f := &FS{}
	f.free.Store(-1)
	f.FS = errorfs.Wrap(usage{vfs.Default, f}, errorfs.InjectorFunc(f.inject))
	return f
}

// Fill makes every later write fail with ENOSPC (creating, writing, syncing,
// preallocating a file) and reports free bytes as free.
func (f *FS) Fill(free int64) {
	f.free.Store(free)
	f.full.Store(true)
}

// Free lets writes succeed again and reports the real free space.
func (f *FS) Free() {
	f.full.Store(false)
	f.free.Store(-1)
}

// SetFree reports free bytes as free without failing writes (a disk nearly full).
func (f *FS) SetFree(free int64) { f.free.Store(free) }

// Failed is how many operations failed with ENOSPC so far.
func (f *FS) Failed() int64 { return f.failed.Load() }

func (f *FS) inject(op errorfs.Op) error {
	if !f.full.Load() {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync,
		errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFilePreallocate, errorfs.OpReuseForWrite,
		errorfs.OpLink:
		f.failed.Add(1)
		return syscall.ENOSPC
	}
	return nil
}

// usage reports the chosen free space.
type usage struct {
	vfs.FS
	f *FS
}

func (u usage) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := u.FS.GetDiskUsage(path)
	if free := u.f.free.Load(); free >= 0 {
		du.AvailBytes, err = uint64(free), nil
	}
	return du, err
}
