package bpf

// The eBPF objects are built by bpf2go from attrib.bpf.c and committed
// (attrib_bpfel.*, attrib_bpfeb.*): `make generate` rebuilds them with
// clang, llvm-strip and libbpf-dev's headers, and CI fails when they are
// stale. include/asm holds three shims, each an #include of asm-generic,
// so that the UAPI headers compile for -target bpf on any host. bpf2go
// passes -fdebug-prefix-map and -fno-ident: the same clang gives
// byte-identical output.
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel,bpfeb -type flow_key -type flow_val -type listen_key -type netns_ref -type owner attrib attrib.bpf.c -- -O2 -g -Wall -Werror -Iinclude
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target amd64,arm64 -type chunk -type go_offsets tls tls.bpf.c -- -O2 -g -Wall -Werror -Iinclude
