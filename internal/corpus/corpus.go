// Package corpus finds the shared capture corpus tests read in place: real
// public captures per protocol, each with a tshark truth file, in a
// directory shared/corpus beside the repository. Tests never copy it.
package corpus

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dir finds the corpus by walking up from the working directory and looking
// for ../shared/corpus at each level. It reports false when there is none.
func Dir() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		parent := filepath.Dir(dir)
		candidate := filepath.Join(parent, "shared", "corpus")
		if st, err := os.Stat(candidate); err == nil && st.IsDir() {
			return candidate, true
		}
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Captures lists the corpus's capture files (pcap, pcapng, gzipped), sorted.
func Captures(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(d.Name(), ".gz")
		if !d.IsDir() && (strings.HasSuffix(name, ".pcap") || strings.HasSuffix(name, ".pcapng")) {
			out = append(out, path)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}
