package tools

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

// PCAPMediaType is the media type of a file get_pcap wrote in format
// ("pcap" or "pcapng").
func PCAPMediaType(format string) string {
	if format == "pcapng" {
		return "application/x-pcapng"
	}
	return "application/vnd.tcpdump.pcap"
}

// EmbedLimit is the largest PCAP get_pcap embeds in its result, and then
// only when its bytes fit max_tokens with the rest of the answer; others
// are read with resources/read.
const EmbedLimit = 256 << 10

// PCAPURI is the resource URI of a PCAP file get_pcap wrote.
func PCAPURI(id string) string { return "pcap://" + id }

type getPCAPArgs struct {
	MaxPackets int `json:"max_packets,omitempty" jsonschema:"most packets to write (default 100000); the answer says when the limit cut the file"`
	windowArgs
	filterArgs
	snapshotArgs
	budgetArgs
}

// PCAPInfo is get_pcap's structured result.
type PCAPInfo struct {
	URI       string `json:"uri" jsonschema:"resource URI: read it with resources/read"`
	Size      int64  `json:"size" jsonschema:"bytes"`
	Packets   uint64 `json:"packets"`
	SHA256    string `json:"sha256"`
	First     string `json:"first,omitempty" jsonschema:"first packet time"`
	Last      string `json:"last,omitempty" jsonschema:"last packet time"`
	Format    string `json:"format" jsonschema:"pcap, or pcapng when the packets mix link types"`
	Truncated bool   `json:"truncated" jsonschema:"whether max_packets cut the file short"`
	Embedded  bool   `json:"embedded" jsonschema:"whether the bytes are embedded in this result (when they fit max_tokens)"`
}

// GetPCAP is the get_pcap tool.
func GetPCAP(b Backend) Tool {
	return newTool(toolSpec{name: "get_pcap", title: "Export packets as PCAP",
		desc: "Export the packets of a window that match the filters as a PCAP file Wireshark and tshark open: its " +
			"size, packet count, sha256, time range and a pcap:// resource URI to read it with resources/read (the bytes are " +
			"embedded too when they fit max_tokens with the rest of the answer). The packets are raw: nothing in them is redacted. Times default to all " +
			"the data; relative times count back from the newest packet.",
		readOnly: true, idempotent: true, output: outputSchema[PCAPInfo]()},
		func(ctx context.Context, req mcp.CallToolRequest, a getPCAPArgs, budgetMax int) (*mcp.CallToolResult, error) {
			b, err := a.snapshotArgs.backend(ctx, b)
			if err != nil {
				return nil, err
			}
			maxPackets := a.MaxPackets
			switch {
			case maxPackets == 0:
				maxPackets = 100_000
			case maxPackets < 0 || maxPackets > 10_000_000:
				return nil, argErrorf("max_packets %d is out of range: use 1 to 10000000", a.MaxPackets)
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			file, err := b.WritePCAP(ctx, from, to, f, maxPackets)
			if err != nil {
				return nil, err
			}
			if file.Packets == 0 {
				return nil, argErrorf("no packets match the filters in %s: list_flows shows what the window holds", describeWindow(from, to))
			}
			info := PCAPInfo{URI: PCAPURI(file.ID), Size: file.Size, Packets: file.Packets, SHA256: file.SHA256,
				First: stamp(file.First), Last: stamp(file.Last), Format: file.Format, Truncated: file.Truncated}
			// The bytes are embedded when they fit with the rest of the answer.
			var text, blob string
			if file.Size <= EmbedLimit {
				_, data, err := b.ReadPCAP(file.ID, EmbedLimit)
				if err != nil {
					return nil, err
				}
				// Base64 takes at least a token per 16 characters (random
				// bytes about one per 2): longer ones cannot fit and are not
				// counted.
				if b64 := base64.StdEncoding.EncodeToString(data); data != nil && len(b64) <= 16*budgetMax {
					if n := Tokens(b64); n < budgetMax {
						with := info
						with.Embedded = true
						if t, used := pcapText(with, maxPackets, budgetMax-n, "the bytes are embedded below"); used+n <= budgetMax {
							info, text, blob = with, t, b64
						}
					}
				}
			}
			if blob == "" {
				why := "the bytes are not embedded: they do not fit max_tokens (" + count(budgetMax) + ") with the rest of the answer"
				if file.Size > EmbedLimit {
					why = "the bytes are not embedded: the file is larger than " + size(EmbedLimit)
				}
				text, _ = pcapText(info, maxPackets, budgetMax, why)
			}
			res := mcp.NewToolResultStructured(info, text)
			res.Content = append(res.Content, mcp.NewResourceLink(info.URI, file.ID+"."+file.Format,
				"packets of "+describeWindow(from, to), PCAPMediaType(file.Format)))
			if blob != "" {
				res.Content = append(res.Content, mcp.NewEmbeddedResource(mcp.BlobResourceContents{
					URI: info.URI, MIMEType: PCAPMediaType(file.Format), Blob: blob}))
			}
			return res, nil
		})
}

// pcapText is get_pcap's text within max tokens together with the
// structured result, and the tokens both take. The pointer to
// resources/read comes first, so that a small budget cuts the details
// after it, never it.
func pcapText(info PCAPInfo, maxPackets, max int, embedding string) (string, int) {
	structured := Tokens(string(mustJSON(info)))
	first := fmt.Sprintf("wrote %s (%s) from %s to %s: read it with resources/read %s",
		plural(info.Packets, "packet"), size(uint64(info.Size)), info.First, info.Last, info.URI)
	if n := Tokens(first); n > max-structured {
		// Only the embedded bytes can leave this little room (the
		// smallest max_tokens holds the first line and the structured
		// result): the caller does not embed them.
		return first, n + structured
	}
	bud := newBudget(max-structured, 0)
	bud.add(first)
	if info.Truncated {
		bud.add(fmt.Sprintf("max_packets (%s) cut it short: narrow the window or the filters, or raise max_packets", count(maxPackets)))
	}
	if embedding != "" {
		bud.add(embedding)
	}
	bud.add("sha256 " + info.SHA256)
	text := bud.text()
	return text, Tokens(text) + structured
}
