package tlslib

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// fileInfo is what one file says, cached by the file's identity.
type fileInfo struct {
	kind         Kind
	library      string // "OpenSSL", "BoringSSL", "Go 1.26.8 crypto/tls"…, without the version for OpenSSL and GnuTLS
	version      string // "3.0.19", "1.1.1w"; empty when unknown
	major, minor uint8
	symbols      map[string]uint64
	returns      map[string][]uint64
	goFD         *GoOffsets
	reason       string
	soname       string
	goSymbols    string // Go: where the functions were found, "symtab" or "pclntab"
}

// openSSLFuncs are the OpenSSL API's functions a probe reads plaintext at.
var openSSLFuncs = []string{"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"}

// gnuTLSFuncs are GnuTLS's: the record functions a probe reads plaintext
// at, and the handshake, whose system calls name the socket.
var gnuTLSFuncs = []string{"gnutls_record_recv", "gnutls_record_send", "gnutls_handshake"}

// GoRead and GoWrite are the Go functions probed.
const (
	GoRead  = "crypto/tls.(*Conn).Read"
	GoWrite = "crypto/tls.(*Conn).Write"
)

// maxFuncBytes bounds the code read for one Go function's returns.
const maxFuncBytes = 1 << 20

// fileOffset converts a virtual address of f to the offset in the file of
// the byte loaded there, through the PT_LOAD program header that holds it.
func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Vaddr <= vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// isStatic reports whether f has no program interpreter (no dynamic
// loader runs it).
func isStatic(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// funcSymbols returns the file offsets of the wanted functions defined in
// f's dynamic symbols and, when present, its symbol table; whether f has a
// .symtab; and whether one of its symbols is BoringSSL's.
func funcSymbols(f *elf.File, wanted []string) (offs map[string]uint64, hasSymtab, boring bool, err error) {
	offs, hasSymtab, boring, _, err = funcSymbols3(f, wanted)
	return
}

// funcSymbols3 is funcSymbols, and also says whether one of the symbols is
// OpenSSL 3's (OSSL_PROVIDER_*).
func funcSymbols3(f *elf.File, wanted []string) (offs map[string]uint64, hasSymtab, boring, ossl3 bool, err error) {
	want := make(map[string]bool, len(wanted))
	for _, w := range wanted {
		want[w] = true
	}
	offs = make(map[string]uint64)
	add := func(syms []elf.Symbol) {
		for _, s := range syms {
			if !boring && (strings.HasPrefix(s.Name, "_ZN4bssl") || strings.HasPrefix(s.Name, "BORINGSSL_")) {
				boring = true
			}
			if !ossl3 && strings.HasPrefix(s.Name, "OSSL_PROVIDER_") {
				ossl3 = true
			}
			if !want[s.Name] || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF || s.Value == 0 {
				continue
			}
			if _, ok := offs[s.Name]; ok {
				continue
			}
			if off, ok := fileOffset(f, s.Value); ok {
				offs[s.Name] = off
			}
		}
	}
	dyn, derr := f.DynamicSymbols()
	if derr != nil && !errors.Is(derr, elf.ErrNoSymbols) {
		return nil, false, false, false, fmt.Errorf("dynamic symbols: %w", derr)
	}
	add(dyn)
	syms, serr := f.Symbols()
	if serr != nil && !errors.Is(serr, elf.ErrNoSymbols) {
		return nil, false, false, false, fmt.Errorf("symbols: %w", serr)
	}
	add(syms)
	return offs, serr == nil, boring, ossl3, nil
}

// hasDynSymbol reports whether f exports name.
func hasDynSymbol(f *elf.File, name string) bool {
	dyn, _ := f.DynamicSymbols()
	for _, s := range dyn {
		if s.Name == name && s.Section != elf.SHN_UNDEF {
			return true
		}
	}
	return false
}

var (
	// openSSLVersionRE matches OPENSSL_VERSION_TEXT: "OpenSSL 3.0.19 27
	// Jan 2026", "OpenSSL 1.1.1w  11 Sep 2023", "OpenSSL 3.0.13+quic 30
	// Jan 2024".
	openSSLVersionRE = regexp.MustCompile(`OpenSSL (\d+)\.(\d+)\.(\d+[a-z]*(?:[-+][0-9A-Za-z.]+)?) +\d{1,2} [A-Z][a-z]{2} \d{4}`)
	// openSSL3VersionStrRE matches OpenSSL 3's OPENSSL_VERSION_STR, a
	// string of its own: "3.0.19".
	openSSL3VersionStrRE = regexp.MustCompile(`\x00([3-9])\.(\d+)\.(\d+)\x00`)
	// gnuTLSVersionRE matches GnuTLS's own version in its messages
	// ("Enabled GnuTLS 3.7.9 logging...").
	gnuTLSVersionRE = regexp.MustCompile(`GnuTLS (\d+)\.(\d+)\.(\d+)`)
)

// scanChunk is how much of a section is read at a time when looking for a
// version string: memory stays bounded whatever the file's size.
const scanChunk = 1 << 20

// findVersion looks for re in f's read-only data sections (.rodata, or
// every allocated non-executable PROGBITS section when there is none) and
// returns the version it names: the submatches 1.2.3 and the major and
// minor numbers.
func findVersion(f *elf.File, re *regexp.Regexp) (version string, major, minor uint8, ok bool) {
	var secs []*elf.Section
	if s := f.Section(".rodata"); s != nil {
		secs = append(secs, s)
	} else {
		for _, s := range f.Sections {
			if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_ALLOC != 0 && s.Flags&elf.SHF_EXECINSTR == 0 {
				secs = append(secs, s)
			}
		}
	}
	const overlap = 128
	buf := make([]byte, scanChunk+overlap)
	for _, s := range secs {
		r := s.Open()
		have := 0
		for {
			n, err := io.ReadFull(r, buf[have:])
			data := buf[:have+n]
			if m := re.FindSubmatch(data); m != nil {
				maj, _ := strconv.Atoi(string(m[1]))
				min, _ := strconv.Atoi(string(m[2]))
				return string(m[1]) + "." + string(m[2]) + "." + string(m[3]), uint8(maj), uint8(min), true
			}
			if err != nil {
				break
			}
			// Keep the tail, in case a version string straddles chunks.
			have = copy(buf, data[len(data)-overlap:])
		}
	}
	return "", 0, 0, false
}

// analyzeLibrary reads a shared library the process maps: libssl (kind
// OpenSSL, or BoringSSL when its symbols say so), libcrypto (only its
// version: kind None), libgnutls.
func analyzeLibrary(r io.ReaderAt, kind Kind) (*fileInfo, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not ELF: %w", err)
	}
	defer f.Close()
	info := &fileInfo{kind: kind}
	if sonames, err := f.DynString(elf.DT_SONAME); err == nil && len(sonames) > 0 {
		info.soname = sonames[0]
	}
	switch kind {
	case None: // libcrypto: where OpenSSL's version text lives
		info.version, info.major, info.minor, _ = findVersion(f, openSSLVersionRE)
		return info, nil
	case OpenSSL:
		offs, _, boring, err := funcSymbols(f, openSSLFuncs)
		if err != nil {
			return nil, err
		}
		info.symbols = offs
		info.library = "OpenSSL"
		if boring {
			info.kind, info.library = BoringSSL, "BoringSSL"
		}
		// OpenSSL 1.0 and earlier kept the version text in libssl too;
		// 1.1 and 3.x only in libcrypto, which the caller reads.
		info.version, info.major, info.minor, _ = findVersion(f, openSSLVersionRE)
		if len(offs) == 0 || offs["SSL_read"] == 0 && offs["SSL_read_ex"] == 0 {
			info.reason = "no SSL_read or SSL_write in " + orUnnamed(info.soname)
		}
	case GnuTLS:
		offs, _, _, err := funcSymbols(f, gnuTLSFuncs)
		if err != nil {
			return nil, err
		}
		info.symbols = offs
		info.library = "GnuTLS"
		info.version, info.major, info.minor, _ = findVersion(f, gnuTLSVersionRE)
		if offs["gnutls_record_recv"] == 0 || offs["gnutls_record_send"] == 0 {
			info.reason = "no gnutls_record_recv or gnutls_record_send in " + orUnnamed(info.soname)
		}
	}
	return info, nil
}

func orUnnamed(s string) string {
	if s == "" {
		return "the library"
	}
	return s
}

// analyzeExecutable reads a process's executable: Go (crypto/tls), the
// OpenSSL API linked in (statically linked OpenSSL or BoringSSL, node's
// OpenSSL), or a static stripped binary nothing can be said of. It returns
// nil when the executable holds no TLS library it can see.
func analyzeExecutable(r io.ReaderAt) (*fileInfo, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not ELF: %w", err)
	}
	defer f.Close()
	if bi, err := buildinfo.Read(r); err == nil {
		return analyzeGo(f, r, bi.GoVersion)
	}
	offs, hasSymtab, boring, ossl3, err := funcSymbols3(f, openSSLFuncs)
	if err != nil {
		return nil, err
	}
	if len(offs) > 0 {
		info := &fileInfo{kind: OpenSSL, library: "OpenSSL", symbols: offs}
		switch {
		case boring:
			info.kind, info.library = BoringSSL, "BoringSSL"
		case hasDynSymbol(f, "napi_create_object"):
			info.kind = NodeOpenSSL
		}
		if info.kind != BoringSSL {
			var ok bool
			info.version, info.major, info.minor, ok = findVersion(f, openSSLVersionRE)
			if !ok && ossl3 {
				// A static link leaves the version text out unless
				// OpenSSL_version is called; OpenSSL 3's built-in
				// providers keep OPENSSL_VERSION_STR ("3.0.19") for their
				// "version" parameter.
				info.version, info.major, info.minor, _ = findVersion(f, openSSL3VersionStrRE)
			}
		}
		return info, nil
	}
	if isStatic(f) && !hasSymtab {
		return &fileInfo{kind: Unknown, library: "unknown (static binary)", reason: ReasonStaticStripped}, nil
	}
	return nil, nil
}

// goVersion parses buildinfo's "go1.26.8" (or "go1.26.8 X:boringcrypto",
// "go1.27rc1").
func goVersion(v string) (text string, major, minor uint8) {
	v, _, _ = strings.Cut(v, " ")
	text = strings.TrimPrefix(v, "go")
	parts := strings.SplitN(text, ".", 3)
	if len(parts) >= 2 {
		maj, _ := strconv.Atoi(parts[0])
		m := parts[1]
		if i := strings.IndexFunc(m, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			m = m[:i]
		}
		min, _ := strconv.Atoi(m)
		major, minor = uint8(maj), uint8(min)
	}
	return text, major, minor
}

// readAt reads n bytes at off, bounded.
func readAt(r io.ReaderAt, off, n uint64) ([]byte, error) {
	if n > maxFuncBytes {
		return nil, fmt.Errorf("function of %d bytes", n)
	}
	b := make([]byte, n)
	got, err := r.ReadAt(b, int64(off))
	if uint64(got) < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// machineName is f's machine for a reason text.
func machineName(m elf.Machine) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}
