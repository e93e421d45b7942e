// Command wirescope is the one wirescope binary: it dissects captures into
// API calls (dissect) and serves them to MCP clients (mcp over stdio, hub over
// streamable HTTP).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := delegate(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "wirescope:", err)
		os.Exit(1)
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "wirescope:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "wirescope",
		Short:         "Network investigation for Kubernetes, built for AI assistants",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDissectCmd())
	addCommands(root)
	return root
}
