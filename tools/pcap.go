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

// EmbedLimit is the largest PCAP get_pcap embeds in its result; larger
// ones are read with resources/read.
const EmbedLimit = 256 << 10

// PCAPURI is the resource URI of a PCAP file get_pcap wrote.
func PCAPURI(id string) string { return "pcap://" + id }

type getPCAPArgs struct {
	MaxPackets int `json:"max_packets,omitempty" jsonschema:"most packets to write (default 100000); the answer says when the limit cut the file"`
	windowArgs
	filterArgs
	budgetArgs
}

// PCAPInfo is get_pcap's structured result.
type PCAPInfo struct {
	URI       string `json:"uri" jsonschema:"resource URI: read it with resources/read"`
	Path      string `json:"path" jsonschema:"the file on the server"`
	Size      int64  `json:"size" jsonschema:"bytes"`
	Packets   uint64 `json:"packets"`
	SHA256    string `json:"sha256"`
	First     string `json:"first,omitempty" jsonschema:"first packet time"`
	Last      string `json:"last,omitempty" jsonschema:"last packet time"`
	Format    string `json:"format" jsonschema:"pcap, or pcapng when the packets mix link types"`
	Truncated bool   `json:"truncated" jsonschema:"whether max_packets cut the file short"`
	Embedded  bool   `json:"embedded" jsonschema:"whether the bytes are embedded in this result"`
}

// GetPCAP is the get_pcap tool.
func GetPCAP(b Backend) Tool {
	def := mcp.NewTool("get_pcap", append([]mcp.ToolOption{
		mcp.WithDescription("Export the packets of a window that match the filters as a PCAP file Wireshark and tshark open: its " +
			"size, packet count, sha256, time range and a pcap:// resource URI to read it with resources/read (the bytes are " +
			"embedded when the file is at most 256 KiB). The packets are raw: nothing in them is redacted. Times default to all " +
			"the data; relative times count back from the newest packet."),
		inputSchema[getPCAPArgs](schemaOpts{}),
		outputSchema[PCAPInfo](),
	}, annotations("Export packets as PCAP", true, false, true, false)...)...)
	return Tool{Def: def, Handler: handle(func(ctx context.Context, req mcp.CallToolRequest, a getPCAPArgs) (*mcp.CallToolResult, error) {
		budgetMax, err := a.maxTokens()
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
		f, err := a.filter()
		if err != nil {
			return nil, err
		}
		from, to, err := a.window(b)
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
		info := PCAPInfo{URI: PCAPURI(file.ID), Path: file.Path, Size: file.Size, Packets: file.Packets, SHA256: file.SHA256,
			First: stamp(file.First), Last: stamp(file.Last), Format: file.Format, Truncated: file.Truncated, Embedded: file.Size <= EmbedLimit}
		text := fmt.Sprintf("wrote %s packets (%s) from %s to %s, sha256 %s, to %s; read it with resources/read %s",
			count(file.Packets), size(uint64(file.Size)), info.First, info.Last, file.SHA256, file.Path, info.URI)
		if file.Truncated {
			text += fmt.Sprintf("; max_packets (%s) cut it short: narrow the window or the filters, or raise max_packets", count(maxPackets))
		}
		if info.Embedded {
			text += "; the bytes are embedded below"
		}
		text = clipTokens(text, budgetMax-Tokens(string(mustJSON(info))))
		res := mcp.NewToolResultStructured(info, text)
		res.Content = append(res.Content, mcp.NewResourceLink(info.URI, file.ID+"."+file.Format,
			"packets of "+describeWindow(from, to), PCAPMediaType(file.Format)))
		if info.Embedded {
			_, data, err := b.ReadPCAP(file.ID, EmbedLimit)
			if err != nil {
				return nil, err
			}
			res.Content = append(res.Content, mcp.NewEmbeddedResource(mcp.BlobResourceContents{
				URI: info.URI, MIMEType: PCAPMediaType(file.Format), Blob: base64.StdEncoding.EncodeToString(data)}))
		}
		return res, nil
	})}
}
