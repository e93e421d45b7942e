//go:build linux

package tlslib

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxCached bounds the files remembered; past it the cache starts again.
const maxCached = 4096

// maxMaps bounds the bytes of /proc/PID/maps read (a JVM with thousands of
// mappings has a few hundred KiB).
const maxMaps = 16 << 20

// fileKey identifies a file's contents: the same device and inode, size
// and modification time are the same bytes.
type fileKey struct {
	dev, ino    uint64
	size, mtime int64
	role        Kind // what the file was read as
}

type cached struct {
	info *fileInfo
	err  error
}

// inspector reads processes under proc ("/proc"; tests give a fake tree).
type inspector struct {
	proc  string
	mu    sync.Mutex
	cache map[fileKey]cached
}

var std = &inspector{proc: "/proc"}

// Inspect returns every TLS library process pid maps or links, and where
// to probe each; none gives an empty slice. An executable that is not ELF
// or cannot be read gives no target and no error; a process that is gone
// gives an error wrapping ErrExited.
func Inspect(pid int) ([]Target, error) {
	return std.inspect(pid)
}

// mapping is one file /proc/PID/maps shows (its first mapping).
type mapping struct {
	addrs    string // "7f12…-7f13…", for map_files
	dev, ino uint64
	path     string
	deleted  bool
}

func (in *inspector) inspect(pid int) ([]Target, error) {
	dir := path.Join(in.proc, strconv.Itoa(pid))
	raw, err := readBounded(path.Join(dir, "maps"), maxMaps)
	if err != nil {
		if in.gone(dir) {
			return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
		}
		return nil, fmt.Errorf("pid %d: read maps: %w", pid, err)
	}
	targets := []Target{}
	if t := in.executable(pid, dir); t != nil {
		targets = append(targets, *t)
	}
	mapped := parseMaps(raw)
	cryptoByDir := make(map[string]mapping)
	for _, m := range mapped {
		if base := path.Base(m.path); strings.HasPrefix(base, "libcrypto.so") {
			if _, ok := cryptoByDir[path.Dir(m.path)]; !ok {
				cryptoByDir[path.Dir(m.path)] = m
			}
		}
	}
	for _, m := range mapped {
		kind := libraryKind(path.Base(m.path))
		if kind == None {
			continue
		}
		t := in.library(pid, dir, m, kind, cryptoByDir)
		targets = append(targets, t)
	}
	if in.gone(dir) {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	return targets, nil
}

// libraryKind classifies a mapped file by its name.
func libraryKind(base string) Kind {
	switch {
	case strings.HasPrefix(base, "libssl3.so"):
		return NSS
	case strings.HasPrefix(base, "libssl.so"), strings.HasPrefix(base, "libboringssl"),
		// auditwheel and delocate rename bundled copies: libssl-1a2b3c4d.so.3
		strings.HasPrefix(base, "libssl-") && strings.Contains(base, ".so"):
		return OpenSSL // or BoringSSL, which its symbols tell
	case strings.HasPrefix(base, "libgnutls.so"):
		return GnuTLS
	case base == "libjvm.so":
		return Java
	}
	return None
}

// gone reports whether the process directory no longer exists.
func (in *inspector) gone(dir string) bool {
	_, err := os.Stat(dir)
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readBounded reads at most limit bytes of a file.
func readBounded(name string, limit int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One large buffer: the kernel fills as much of it as the maps text
	// holds in each read, where io.ReadAll's growth takes many reads.
	buf := make([]byte, 0, 64<<10)
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), limit-len(buf)))
		}
		n, err := f.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// parseMaps returns the libraries mapped (files named lib*), each once,
// in order.
func parseMaps(raw []byte) []mapping {
	var out []mapping
	seen := make(map[string]bool)
	for line := range bytes.Lines(raw) {
		// Only libraries are of interest (the executable is read through
		// /proc/PID/exe): skip the other lines before splitting them.
		if i := bytes.LastIndexByte(line, '/'); i < 0 || !bytes.HasPrefix(line[i+1:], []byte("lib")) {
			continue
		}
		// start-end perms offset dev inode path
		fields := bytes.Fields(line)
		if len(fields) < 6 || fields[5][0] != '/' {
			continue
		}
		// The path is everything after the fifth field, spaces included.
		rest := line
		for range 5 {
			rest = bytes.TrimLeft(rest, " \t")
			i := bytes.IndexAny(rest, " \t")
			if i < 0 {
				rest = nil
				break
			}
			rest = rest[i:]
		}
		p := strings.TrimSpace(string(rest))
		deleted := strings.HasSuffix(p, " (deleted)")
		p = strings.TrimSuffix(p, " (deleted)")
		if seen[p] {
			continue
		}
		seen[p] = true
		m := mapping{addrs: string(fields[0]), path: p, deleted: deleted}
		if maj, min, ok := strings.Cut(string(fields[3]), ":"); ok {
			a, err1 := strconv.ParseUint(maj, 16, 32)
			b, err2 := strconv.ParseUint(min, 16, 32)
			if err1 == nil && err2 == nil {
				m.dev = unix.Mkdev(uint32(a), uint32(b))
			}
		}
		m.ino, _ = strconv.ParseUint(string(fields[4]), 10, 64)
		out = append(out, m)
	}
	return out
}

// hostPath is where the agent opens a mapped file: through the process's
// root, or its map_files entry when the file was deleted (replaced by an
// upgrade while the process runs).
func hostPath(dir string, m mapping) string {
	if m.deleted {
		return path.Join(dir, "map_files", m.addrs)
	}
	return path.Join(dir, "root", m.path)
}

// statKey stats name.
func statKey(name string, role Kind) (fileKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return fileKey{}, err
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), role: role}, nil
}

// bigFile is the size past which the memory read for analyzing a file is
// returned to the system at once.
const bigFile = 16 << 20

// analyze returns what the file at name says, read as role, from the cache
// when the same file was read before.
func (in *inspector) analyze(name string, key fileKey) (*fileInfo, error) {
	in.mu.Lock()
	c, ok := in.cache[key]
	in.mu.Unlock()
	if ok {
		return c.info, c.err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err // not cached: it may be readable later
	}
	var info *fileInfo
	if key.role == Unknown {
		info, err = analyzeExecutable(f)
	} else {
		info, err = analyzeLibrary(f, key.role)
	}
	f.Close()
	if key.size >= bigFile {
		// Reading a large binary's symbols and DWARF allocates several
		// times its size, all garbage once its few offsets are kept:
		// hand it back now rather than over the next minute (an agent
		// that read a node's Go binaries held 200 MiB for 30 s).
		debug.FreeOSMemory()
	}
	in.mu.Lock()
	if in.cache == nil || len(in.cache) >= maxCached {
		in.cache = make(map[fileKey]cached)
	}
	in.cache[key] = cached{info, err}
	in.mu.Unlock()
	return info, err
}

// InspectExecutable returns what the executable at name says of the TLS
// library it links (as Inspect's first target would), for process pid
// which ran it and may be gone: name is a path that outlives it, such as
// /proc/self/fd/N of the agent's descriptor of /proc/PID/exe, opened
// when the process executed. Path is name. It returns nil when the file
// holds no TLS library it can see, is not ELF or cannot be read.
func InspectExecutable(pid int, name string) *Target {
	return std.executableAt(pid, name)
}

// executableAt inspects the executable at exe as process pid's.
func (in *inspector) executableAt(pid int, exe string) *Target {
	key, err := statKey(exe, Unknown)
	if err != nil {
		return nil
	}
	info, err := in.analyze(exe, key)
	if err != nil || info == nil {
		return nil
	}
	t := info.target(pid)
	if t.Kind != Unknown {
		t.Path, t.Dev, t.Ino = exe, key.dev, key.ino
	}
	return &t
}

// executable inspects the process's executable (role Unknown in the
// cache's key). It returns nil when it holds no TLS library it can see,
// is not ELF or cannot be read.
func (in *inspector) executable(pid int, dir string) *Target {
	exe := path.Join(dir, "exe")
	link, err := os.Readlink(exe)
	if err != nil {
		return nil // a kernel thread, or gone (the caller checks)
	}
	t := in.executableAt(pid, exe)
	if t == nil || t.Kind == Unknown {
		return t // nothing to probe: no path
	}
	// Probe the file by its path in the process's root when that is the
	// same file, else through /proc/PID/exe.
	if !strings.HasSuffix(link, " (deleted)") && strings.HasPrefix(link, "/") {
		p := path.Join(dir, "root", link)
		if k, err := statKey(p, Unknown); err == nil && k.dev == t.Dev && k.ino == t.Ino {
			t.Path = p
		}
	}
	return t
}

// library inspects one mapped library of a known kind.
func (in *inspector) library(pid int, dir string, m mapping, kind Kind, cryptoByDir map[string]mapping) Target {
	t := Target{PID: pid, Kind: kind, Path: hostPath(dir, m), MapDev: m.dev, MapIno: m.ino}
	key, statErr := statKey(t.Path, kind)
	if statErr == nil {
		t.Dev, t.Ino = key.dev, key.ino
	}
	switch kind {
	case Java:
		t.Library, t.Reason = "Java", ReasonJava
		return t
	case NSS:
		t.Library, t.Reason = "NSS", ReasonNSS
		return t
	}
	if statErr != nil {
		t.Library = kind.String()
		t.Reason = fmt.Sprintf("cannot open %s: %v", m.path, statErr)
		return t
	}
	info, err := in.analyze(t.Path, key)
	if err != nil {
		t.Library = kind.String()
		t.Reason = fmt.Sprintf("cannot read %s: %v", m.path, err)
		return t
	}
	lt := info.target(pid)
	lt.Path, lt.Dev, lt.Ino, lt.MapDev, lt.MapIno = t.Path, t.Dev, t.Ino, t.MapDev, t.MapIno
	if lt.Kind == OpenSSL && info.version == "" {
		// OpenSSL 1.1 and 3.x keep their version text in libcrypto.
		lt.Library, lt.Major, lt.Minor = in.openSSLVersion(dir, m, info, cryptoByDir)
	}
	return lt
}

// openSSLVersion reads the version of the OpenSSL whose libssl is m from
// the libcrypto the process maps from the same directory, or, failing
// that, gives the major (and minor) the SONAME says.
func (in *inspector) openSSLVersion(dir string, m mapping, ssl *fileInfo, cryptoByDir map[string]mapping) (string, uint8, uint8) {
	if cm, ok := cryptoByDir[path.Dir(m.path)]; ok {
		p := hostPath(dir, cm)
		if key, err := statKey(p, None); err == nil {
			if ci, err := in.analyze(p, key); err == nil && ci.version != "" {
				return "OpenSSL " + ci.version, ci.major, ci.minor
			}
		}
	}
	// libssl.so.3 → 3; libssl.so.1.1 → 1.1.
	soname := ssl.soname
	if soname == "" {
		soname = path.Base(m.path)
	}
	_, v, ok := strings.Cut(soname, ".so.")
	if !ok {
		return "OpenSSL (version unknown)", 0, 0
	}
	parts := strings.SplitN(v, ".", 3)
	maj, _ := strconv.Atoi(parts[0])
	min := 0
	if len(parts) > 1 {
		min, _ = strconv.Atoi(parts[1])
	}
	return "OpenSSL " + v + " (from the SONAME; version text not found)", uint8(maj), uint8(min)
}

// target makes a process's Target from a file's information (the maps
// copied: callers may change them).
func (info *fileInfo) target(pid int) Target {
	t := Target{PID: pid, Kind: info.kind, Library: info.library, Major: info.major, Minor: info.minor, Reason: info.reason}
	if info.version != "" && (info.kind == OpenSSL || info.kind == NodeOpenSSL || info.kind == GnuTLS) {
		t.Library += " " + info.version
	}
	if info.kind == NodeOpenSSL {
		t.Library = "OpenSSL"
		if info.version != "" {
			t.Library += " " + info.version
		}
		t.Library += " (node)"
	}
	if info.symbols != nil {
		t.Symbols = maps.Clone(info.symbols)
	}
	if info.returns != nil {
		t.Returns = make(map[string][]uint64, len(info.returns))
		for k, v := range info.returns {
			t.Returns[k] = slices.Clone(v)
		}
	}
	if info.goFD != nil {
		g := *info.goFD
		t.GoFD = &g
	}
	return t
}
