// Package index stores dissected calls and answers the questions the MCP
// tools ask of them: search calls, fetch one, summarize traffic.
//
// # Layout
//
// Calls are partitioned by time: a partition holds the calls whose TS is in
// [start, start+Options.PartitionSpan) (an hour by default) in its own
// directory, with three parts (FORMAT.md has the bytes):
//
//   - a call store (package callstore): the full call records, append-only,
//     found by call ID. Bleve stores nothing.
//   - a Bleve index (Scorch) over what searches look at, one document per
//     call, keyed by the call's time and ID.
//   - aggregates counted at ingest: per minute and per (protocol, source and
//     destination namespace, workload, service, pod and node, method, route,
//     status, outcome) the calls, a latency sketch (package sketch), body
//     bytes and first and last times. Summarize merges them instead of
//     visiting calls.
//
// Partitions are indexed in parallel (Options.Workers Bleve batches at once),
// searched newest first, counted through a Bleve index alias, and dropped
// whole for retention (DropPartition).
//
// # Query strings
//
// Query.Text uses Bleve's query string syntax over these fields:
//
//	proto            protocol: http, dns, …
//	method           HTTP method, DNS query type, …
//	path             HTTP request target, DNS name, …
//	route            the call's endpoint template (Route): "GET /api/orders/{id}"
//	status           HTTP status, DNS rcode name, …; numeric ranges work: status:>=500
//	outcome          ok, client_error, server_error, no_response, incomplete
//	error            why a call is incomplete: "no response: connection reset", …
//	src.ip src.port src.pod src.namespace src.workload src.service src.node
//	dst.ip dst.port dst.pod dst.namespace dst.workload dst.service dst.node
//	latency_ms       latency in milliseconds, numeric: latency_ms:>500, latency_ms:<=2.5
//
// A word without a field name matches path, route, error, method or status.
// Values are matched without regard to case. Quote a value holding a colon
// or a space: src.ip:"fd00::1", route:"GET /healthz". Clauses are optional unless
// prefixed with + (required) or - (excluded): "+dst.service:checkout
// +status:>=500". AND, OR and NOT are not operators; a query using them is
// rejected with a message saying so.
//
// How values are analyzed:
//
//   - proto, method, status, outcome, route and the src./dst. fields are
//     keywords: the whole value, lower-cased, is one term. dst.pod:web-7d9f
//     matches that pod only; dst.pod:web-* every pod starting so.
//   - path and error are split into words (runs of letters and digits),
//     with an ID-like path segment kept whole (see Route), and also indexed
//     whole: for a path, as its template (query string dropped, IDs replaced
//     by {id}). So path:cart and a bare cart match /api/cart/42,
//     path:/api/cart/42 matches calls having the words api, cart and 42, and
//     the wildcard path:/api/cart* matches the templates starting /api/cart.
//     Several words in one value, or in a quoted phrase, must all be present,
//     in any order: there are no term positions.
//   - status, src.port and dst.port also take numeric ranges.
//   - latency_ms is numeric only. Calls without a latency (no response)
//     match no latency range.
//   - Wildcards (* and ?), regular expressions (/…/) and fuzzy terms (~1)
//     apply to the terms above.
//
// Time windows are Query.From and Query.To, not part of the query string.
//
// # Summaries
//
// Summarize merges the per-minute aggregates of the minutes wholly inside
// the window, and aggregates the calls of the parts of minutes at its edges
// from the call stores (found by search): windows are exact, as in Search,
// at the cost of reading up to two minutes of calls. IP and Port are not
// dimensions of the aggregates: a summary filtered by either searches the
// matching calls of the whole window and aggregates them from the call
// stores, which takes time proportional to the number of calls matching.
//
// # Crash safety
//
// Add appends to the call store first, counts the calls in the aggregates,
// then indexes them; Bleve batches return once searchable, without waiting
// for disk. The call store is the log the rest is rebuilt from: Open cuts a
// torn record off its end, re-indexes the records Bleve had not persisted
// (or rebuilds Bleve when it is missing, damaged or holds calls the store
// lost), and recounts the records the saved aggregates do not cover.
//
// The package does not log except through the *slog.Logger given to Open,
// and then only about repairs and failures.
package index
