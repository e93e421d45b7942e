/* bitsperlong.h: the architecture-independent UAPI definition, so that linux/bpf.h
 * compiles for -target bpf on any host (see ../../README.md). */
#include <asm-generic/bitsperlong.h>
