package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDependencies: the client builds from the standard library and
// the module root's shared types and the wire format alone, never the server's packages
// (storage pulls in Pebble): docs/decisions/0016-one-go-vocabulary.md.
func TestClientDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/badbatch/badbatch":                true,
		"github.com/badbatch/badbatch/httpapi/client": true,
		// The binary record format, standard library only (decision 0019).
		"github.com/badbatch/badbatch/httpapi/wire": true,
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		deps = append(deps, p)
		if !allowed[p] {
			t.Errorf("the client depends on %s", p)
		}
	}
	if len(deps) != len(allowed) {
		t.Errorf("dependencies %v, want exactly %v", deps, allowed)
	}
}
