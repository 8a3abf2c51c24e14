package labels_test

import (
	"testing"

	"github.com/verdictml/verdict/labels/storetest"
)

// TestStoreConformance runs the join semantics on the in-memory store; the embedded
// and DynamoDB stores run the same suite in their packages.
func TestStoreConformance(t *testing.T) { storetest.Run(t, storetest.OpenMemory) }
