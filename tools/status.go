package tools

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

type captureStatusArgs struct {
	budgetArgs
}

// CaptureStatus is the capture_status tool.
func CaptureStatus(b Backend) Tool {
	return newTool(toolSpec{name: "capture_status", title: "Capture status",
		desc: "What wirescope can see: its sources and the time they cover, packets, bytes and drops, which windows " +
			"are dissected into calls, calls by protocol, flows by application protocol, and what is not visible (encrypted " +
			"flows, flows no dissector understands, undecodable packets). Call it first: it tells \"no traffic\" from \"not captured\".",
		readOnly: true, idempotent: true},
		func(ctx context.Context, req mcp.CallToolRequest, a captureStatusArgs, budgetMax int) (*mcp.CallToolResult, error) {
			st, err := b.Status(ctx)
			if err != nil {
				return nil, err
			}
			bud := newBudget(budgetMax, 40)
			if st.First.IsZero() {
				bud.add("no traffic captured yet")
			} else {
				bud.add(fmt.Sprintf("capture: %s to %s (%s), %s, %s, %s dropped", stamp(st.First), stamp(st.Last),
					st.Last.Sub(st.First).Round(1e6), plural(st.Packets, "packet"), size(st.Bytes), count(st.Drops)))
			}
			if len(st.Dissected) == 0 {
				bud.add("dissected: nothing yet; search_calls and summarize_traffic dissect the window they are asked about (or call dissect)")
			} else {
				bud.add("dissected: " + windowsText(st.Dissected))
			}
			bud.add("calls: " + counts(st.Calls, "none"))
			var flows uint64
			for _, n := range st.Flows {
				flows += n
			}
			undissected := st.Flows[""]
			known := maps.Clone(st.Flows)
			delete(known, "")
			line := fmt.Sprintf("flows: %s (%s); not understood by any dissector: %s; encrypted: %s", count(flows+st.Empty),
				counts(known, "no protocol recognised"), count(undissected), count(st.Encrypted))
			line += encryptedText(&st)
			if st.Empty > 0 {
				line += fmt.Sprintf("; without payload (handshakes alone, scans): %s", count(st.Empty))
			}
			bud.add(line)
			if len(st.TLSWorkloads) > 0 {
				bud.add("encrypted flows by workload (client or server; those with flows not read first):")
				for i := range st.TLSWorkloads {
					bud.add("  " + tlsWorkloadText(&st.TLSWorkloads[i]))
				}
			}
			if st.NotDecoded > 0 {
				bud.add(fmt.Sprintf("packets not decoded (not IP, unsupported link type or malformed): %s", count(st.NotDecoded)))
			}
			for _, n := range st.Notes {
				bud.add("note: " + n)
			}
			bud.add(fmt.Sprintf("sources (%d):", len(st.Sources)))
			// Sources that do not answer come first: what is missing from every
			// answer matters more than what is there.
			for _, s := range st.Sources {
				if s.State != "unreachable" {
					continue
				}
				line := fmt.Sprintf("  %s %s: UNREACHABLE since %s (%s); its traffic is not in these answers", s.Kind, s.Name, stamp(s.Since), s.Error)
				if !s.LastContact.IsZero() {
					line += "; last contact " + stamp(s.LastContact)
				}
				bud.add(line)
			}
			for _, s := range st.Sources {
				if s.State == "unreachable" {
					continue
				}
				line := fmt.Sprintf("  %s %s: %s to %s, %s, %s", s.Kind, s.Name, stamp(s.First), stamp(s.Last), plural(s.Packets, "packet"), size(s.Bytes))
				if s.Kind == "agent" && !s.LastContact.IsZero() {
					line += ", last contact " + stamp(s.LastContact)
				}
				if s.Drops > 0 {
					line += fmt.Sprintf(", %s dropped", count(s.Drops))
				}
				for _, w := range s.Warnings {
					line += "; warning: " + w
				}
				bud.add(line)
				if s.TLS != nil {
					bud.add("    " + tlsCoverageText(s.TLS))
				}
			}
			var closing []string
			if bud.omitted > 0 {
				closing = append(closing, fmt.Sprintf("(%d more lines not shown: raise max_tokens)", bud.omitted))
			}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// counts renders a map as "http 29, dns 22", biggest first.
func counts(m map[string]uint64, none string) string {
	if len(m) == 0 {
		return none
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + count(m[k])
	}
	return strings.Join(parts, ", ")
}

// encryptedText says what became of the encrypted flows, "" if there were
// none.
func encryptedText(st *Status) string {
	if st.Encrypted == 0 {
		return ""
	}
	uprobes := ""
	if len(st.DecryptedBy) > 0 {
		uprobes = "; decrypted from their TLS library by uprobes: " + counts(st.DecryptedBy, "")
	}
	return fmt.Sprintf(" (decrypted with the key log: %s%s; handshake only, not decrypted: %s; no handshake seen: %s; not dissected yet: %s)",
		count(st.Decrypted), uprobes, count(st.HandshakeOnly), count(st.NoHandshake), count(st.EncryptedNotDissected))
}

// tlsWorkloadText says what became of a workload's encrypted flows:
// "shop/web: 7 encrypted flows; read: OpenSSL 3.0 uprobe 5; NOT read
// (opaque here, not absent): statically linked without symbols
// (static-tls 812) 2".
func tlsWorkloadText(t *TLSWorkload) string {
	line := fmt.Sprintf("%s: %s", t.Name, plural(t.Flows, "encrypted flow"))
	if len(t.Read) > 0 {
		line += "; read: " + counts(t.Read, "")
	}
	if len(t.Opaque) > 0 {
		line += "; NOT read (opaque here, not absent): " + counts(t.Opaque, "")
	}
	if t.NotDissected > 0 {
		line += fmt.Sprintf("; in windows not dissected yet (read or not is known once they are): %s", count(t.NotDissected))
	}
	return line
}

// tlsCoverageText says what a node agent reads of TLS from its processes'
// libraries, and above all what it cannot: "TLS plaintext: on; read from
// OpenSSL 3.0.19 (nginx 412, curl 977); NOT readable (their TLS traffic is
// opaque here): statically linked without symbols: app 123".
func tlsCoverageText(c *TLSCoverage) string {
	if c.State != "on" {
		return "TLS plaintext: " + c.State + " (TLS traffic on this node is read only with a key log)"
	}
	// A process is not readable when none of its TLS libraries is read;
	// one that is read and also loads another library (curl's libldap
	// brings GnuTLS) is read, the other library noted apart.
	read, not, also := map[string][]string{}, map[string][]string{}, map[string][]string{}
	probed := map[int]bool{}
	for _, p := range c.Processes {
		if p.Probed {
			probed[p.PID] = true
		}
	}
	for _, p := range c.Processes {
		name := fmt.Sprintf("%s %d", p.Comm, p.PID)
		if p.Exited {
			name += " (exited)"
		}
		why := p.Reason
		if p.Library != "" && !strings.Contains(why, p.Library) {
			why = p.Library + ": " + why
		}
		switch {
		case p.Probed:
			read[p.Library] = append(read[p.Library], name)
		case probed[p.PID]:
			also[why] = append(also[why], name)
		default:
			not[why] = append(not[why], name)
		}
	}
	group := func(m map[string][]string) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			names := m[k]
			slices.Sort(names)
			if len(names) > 8 {
				names = append(names[:8:8], fmt.Sprintf("%d more", len(m[k])-8))
			}
			parts[i] = k + " (" + strings.Join(names, ", ") + ")"
		}
		return strings.Join(parts, "; ")
	}
	line := "TLS plaintext: on"
	if len(read) > 0 {
		line += "; read from " + group(read)
	} else {
		line += "; no process's TLS library probed yet"
	}
	if len(not) > 0 {
		line += "; NOT readable (their TLS traffic is opaque here, not absent): " + group(not)
	}
	if len(also) > 0 {
		line += "; also loaded by processes read above, not read itself: " + group(also)
	}
	if c.Dropped > 0 {
		line += fmt.Sprintf("; dropped %s of plaintext (%s): calls on those connections may be missing or cut", plural(c.Dropped, "chunk"), size(c.LostBytes))
	}
	return line
}
