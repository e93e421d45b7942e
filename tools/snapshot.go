package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Snapshot is a window of packets frozen against retention, on every node
// that holds packets in it.
type Snapshot struct {
	Name     string
	From, To time.Time
	Created  time.Time
	// Filter narrowed what the snapshot reads (the packets of the flows
	// that matched it when it was made); zero: everything.
	Filter Filter
	// Flows is how many flows the filter kept (0 without a filter).
	Flows int
	// Parts are the nodes (or stores) holding it, with their segments.
	Parts []SnapshotPart
}

// SnapshotPart is a snapshot on one node.
type SnapshotPart struct {
	Part     string
	Segments int
}

// Snapshots is what a backend that can freeze windows offers (a hub
// reading agents, a local capture).
type Snapshots interface {
	CreateSnapshot(ctx context.Context, name string, from, to time.Time, f Filter) (Snapshot, error)
	ListSnapshots(ctx context.Context) ([]Snapshot, error)
	DeleteSnapshot(ctx context.Context, name string) error
	// OpenSnapshot returns a backend over the snapshot: its own index, kept
	// from one call to the next.
	OpenSnapshot(ctx context.Context, name string) (Backend, error)
}

// ErrNoSnapshots is the answer of a backend that cannot take snapshots.
var ErrNoSnapshots = errors.New("snapshots need a live capture (wirescope hub --agents or --iface): capture files do not expire, so there is nothing to freeze")

// snapshotsOf finds Snapshots on b, looking through wrappers (Unwrap).
func snapshotsOf(b Backend) (Snapshots, bool) {
	for b != nil {
		if s, ok := b.(Snapshots); ok {
			return s, true
		}
		u, ok := b.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		b = u.Unwrap()
	}
	return nil, false
}

// snapshotArgs name a snapshot to read instead of the live data.
type snapshotArgs struct {
	Snapshot string `json:"snapshot,omitempty" jsonschema:"read this snapshot (create_snapshot made it; list_snapshots lists them) instead of the live data; relative times then count back from its newest packet"`
}

// backend returns the backend the call reads: b, or the snapshot's.
func (a snapshotArgs) backend(ctx context.Context, b Backend) (Backend, error) {
	if a.Snapshot == "" {
		return b, nil
	}
	s, ok := snapshotsOf(b)
	if !ok {
		return nil, argError("snapshot: " + ErrNoSnapshots.Error())
	}
	sb, err := s.OpenSnapshot(ctx, a.Snapshot)
	if err != nil {
		return nil, argErrorf("snapshot %q: %v (list_snapshots lists them)", a.Snapshot, err)
	}
	return sb, nil
}

type createSnapshotArgs struct {
	Name string `json:"name" jsonschema:"the snapshot's name: letters, digits, '.', '_' and '-' (at most 100)"`
	windowArgs
	filterArgs
	budgetArgs
}

// CreateSnapshot is the create_snapshot tool.
func CreateSnapshot(b Backend) Tool {
	return newTool(toolSpec{name: "create_snapshot", title: "Create a snapshot",
		desc: "Freeze the packets of a window against retention, on every node that holds packets in it, so that " +
			"an incident's evidence survives after the rolling capture has moved on; with filters, the snapshot reads only the " +
			"flows that match them now. get_pcap, dissect, search_calls and summarize_traffic read it with snapshot=NAME. Times " +
			"default to all the data; relative times count back from the newest packet.",
	},
		func(ctx context.Context, req mcp.CallToolRequest, a createSnapshotArgs, budgetMax int) (*mcp.CallToolResult, error) {
			if a.Name == "" {
				return nil, argError("name is required")
			}
			s, ok := snapshotsOf(b)
			if !ok {
				return nil, argError(ErrNoSnapshots.Error())
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			snap, err := s.CreateSnapshot(ctx, a.Name, from, to, f)
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(clipTokens("created "+snapshotText(snap), budgetMax)), nil
		})
}

func snapshotText(s Snapshot) string {
	var parts []string
	for _, p := range s.Parts {
		parts = append(parts, fmt.Sprintf("%s (%s)", p.Part, plural(uint64(p.Segments), "segment")))
	}
	text := fmt.Sprintf("snapshot %s of %s, made %s, on %s", s.Name, describeWindow(s.From, s.To), stamp(s.Created), strings.Join(parts, ", "))
	if !s.Filter.IsZero() {
		text += fmt.Sprintf("; reading only the %s that matched %s", plural(uint64(s.Flows), "flow"), describeFilter(s.Filter))
	}
	return text
}

type listSnapshotsArgs struct {
	budgetArgs
}

// ListSnapshots is the list_snapshots tool.
func ListSnapshots(b Backend) Tool {
	return newTool(toolSpec{name: "list_snapshots", title: "List snapshots",
		desc:     "List the snapshots create_snapshot made: name, window, when made, the nodes holding them and the filters.",
		readOnly: true, idempotent: true},
		func(ctx context.Context, req mcp.CallToolRequest, a listSnapshotsArgs, budgetMax int) (*mcp.CallToolResult, error) {
			s, ok := snapshotsOf(b)
			if !ok {
				return nil, argError(ErrNoSnapshots.Error())
			}
			snaps, err := s.ListSnapshots(ctx)
			if err != nil {
				return nil, err
			}
			bud := newBudget(budgetMax, 20)
			bud.add(plural(uint64(len(snaps)), "snapshot"))
			for _, sn := range snaps {
				bud.add("  " + snapshotText(sn))
			}
			var closing []string
			if bud.omitted > 0 {
				closing = append(closing, fmt.Sprintf("(%d more not shown: raise max_tokens)", bud.omitted))
			}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

type deleteSnapshotArgs struct {
	Name string `json:"name" jsonschema:"the snapshot to delete"`
	budgetArgs
}

// DeleteSnapshot is the delete_snapshot tool.
func DeleteSnapshot(b Backend) Tool {
	return newTool(toolSpec{name: "delete_snapshot", title: "Delete a snapshot",
		desc:        "Delete a snapshot on every node, with what was dissected of it; packets the rolling capture still holds stay.",
		destructive: true, idempotent: true},
		func(ctx context.Context, req mcp.CallToolRequest, a deleteSnapshotArgs, budgetMax int) (*mcp.CallToolResult, error) {
			if a.Name == "" {
				return nil, argError("name is required")
			}
			s, ok := snapshotsOf(b)
			if !ok {
				return nil, argError(ErrNoSnapshots.Error())
			}
			if err := s.DeleteSnapshot(ctx, a.Name); err != nil {
				return nil, err
			}
			return mcp.NewToolResultText("deleted snapshot " + a.Name), nil
		})
}
