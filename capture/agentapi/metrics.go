package agentapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector reads the store's and the capture's counters at each scrape.
type collector struct {
	o     Options
	descs map[string]*prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("wirescope_agent_"+name, help, labels, nil)
}

func newCollector(o Options) *collector {
	return &collector{o: o, descs: map[string]*prometheus.Desc{
		"packets":        desc("stored_packets_total", "Packets written to the segment store."),
		"bytes":          desc("stored_bytes_total", "Bytes written to the segment store (PCAP records)."),
		"dropped":        desc("store_dropped_packets_total", "Packets the store could not keep (disk full)."),
		"kernel_packets": desc("kernel_packets_total", "Packets the kernel delivered to the capture ring (TPACKET statistics).", "iface"),
		"kernel_drops":   desc("kernel_drops_total", "Packets the kernel dropped because the capture ring was full.", "iface"),
		"duplicates":     desc("duplicate_packets_total", "Packets seen again on another interface and stored once."),
		"segments":       desc("segments", "Segments in the store."),
		"disk":           desc("disk_bytes", "Bytes the store's segments take."),
		"snapshot":       desc("snapshot_only_bytes", "Bytes only snapshots still hold."),
		"oldest":         desc("oldest_packet_timestamp_seconds", "Time of the oldest packet held."),
		"newest":         desc("newest_packet_timestamp_seconds", "Time of the newest packet held."),
		"full":           desc("disk_full", "1 while the disk is full and packets are dropped."),
		"ebpf":           desc("ebpf_attribution", "1 when flows are attributed to processes with eBPF.", "status"),
		"tls_on":         desc("tls_plaintext", "1 when TLS plaintext is read with eBPF uprobes.", "status"),
		"tls_chunks":     desc("tls_plaintext_chunks_total", "Chunks of TLS plaintext read from the probed libraries."),
		"tls_bytes":      desc("tls_plaintext_bytes_total", "Bytes of TLS plaintext read."),
		"tls_records":    desc("tls_plaintext_records_total", "Plaintext records stored."),
		"tls_dropped":    desc("tls_plaintext_dropped_chunks_total", "Chunks of TLS plaintext dropped, by why.", "reason"),
		"tls_lost":       desc("tls_plaintext_lost_bytes_total", "Bytes of TLS plaintext dropped."),
		"tls_libraries":  desc("tls_plaintext_probed_libraries", "TLS library files probed."),
	}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.o.Store.Stats()
	cp := c.o.Capture()
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	counter("packets", float64(st.Packets))
	counter("bytes", float64(st.Bytes))
	counter("dropped", float64(st.Dropped))
	counter("duplicates", float64(cp.Duplicates))
	for _, i := range cp.Interfaces {
		counter("kernel_packets", float64(i.Packets), i.Name)
		counter("kernel_drops", float64(i.Drops), i.Name)
	}
	gauge("segments", float64(st.Segments))
	gauge("disk", float64(st.DiskBytes))
	gauge("snapshot", float64(st.SnapshotBytes))
	if !st.Oldest.IsZero() {
		gauge("oldest", float64(st.Oldest.UnixNano())/1e9)
		gauge("newest", float64(st.Newest.UnixNano())/1e9)
	}
	full := 0.0
	if st.Full {
		full = 1
	}
	gauge("full", full)
	on := 0.0
	if cp.AttributionOn {
		on = 1
	}
	gauge("ebpf", on, cp.Attribution)
	if cp.TLSPlaintext != "" {
		on = 0
		if cp.TLS != nil {
			on = 1
		}
		gauge("tls_on", on, cp.TLSPlaintext)
	}
	if t := cp.TLS; t != nil {
		counter("tls_chunks", float64(t.Counters.Chunks))
		counter("tls_bytes", float64(t.Counters.Bytes))
		counter("tls_records", float64(t.Records))
		counter("tls_dropped", float64(t.Counters.RingFull), "ring_full")
		counter("tls_dropped", float64(t.Counters.OverRate), "over_rate")
		counter("tls_dropped", float64(t.Counters.ReadFaults), "read_fault")
		counter("tls_dropped", float64(t.WriteErrors), "store_refused")
		counter("tls_lost", float64(t.Counters.LostBytes))
		gauge("tls_libraries", float64(len(t.Probed)))
	}
}

func metricsHandler(o Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(o), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
