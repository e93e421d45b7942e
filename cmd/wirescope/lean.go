//go:build lean

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// A lean build (go build -tags lean; make build installs it as wirescope)
// is dissect alone: none of the packages the MCP servers, the agent and
// the Kubernetes client bring, whose initialisation costs a process 80 to
// 100 ms before it reads its first packet — more than dissecting a
// 50,000-call capture takes. Every other command replaces the process
// (execve: the same PID, signals and standard streams) with the full
// binary, fullName, found beside this executable or on PATH.

// fullName is the full binary's file name.
const fullName = "wirescope-full"

// delegatedEnv is set across the exec, so that a lean binary installed
// under the full one's name fails instead of executing itself forever.
const delegatedEnv = "WIRESCOPE_DELEGATED"

func addCommands(*cobra.Command) {}

// delegate returns for dissect; for anything else it executes the full
// binary in this process's place, or returns why it cannot.
func delegate(args []string) error {
	if len(args) > 1 && args[1] == "dissect" {
		return nil
	}
	if os.Getenv(delegatedEnv) != "" {
		return fmt.Errorf("%s is a lean build too (dissect only): build the full binary with go build ./cmd/wirescope", fullName)
	}
	path, err := fullBinary()
	if err != nil {
		return err
	}
	if err := os.Setenv(delegatedEnv, "1"); err != nil {
		return err
	}
	return fmt.Errorf("executing %s: %w", path, syscall.Exec(path, args, os.Environ()))
}

// fullBinary finds the full binary beside this executable, else on PATH.
func fullBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		if exe, err := filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), fullName)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath(fullName); err == nil {
		return p, nil
	}
	return "", errors.New("this wirescope is the lean build, which only dissects; the other commands are in " + fullName +
		", not found beside it or on PATH (make build puts both in bin/; go build ./cmd/wirescope builds the full one alone)")
}
