//go:build !lean

package main

import "github.com/spf13/cobra"

// addCommands adds the commands beside dissect: the MCP servers, the agent
// and the eval pack. A lean build (lean.go) has none of them.
func addCommands(root *cobra.Command) {
	root.AddCommand(newMCPCmd(), newHubCmd(), newEvalCmd(), newAgentCmd())
}

// delegate runs every command here: this is the full binary.
func delegate([]string) error { return nil }
