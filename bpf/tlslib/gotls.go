package tlslib

import (
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/arch/x86/x86asm"
)

// goFunc is one Go function's extent in virtual addresses.
type goFunc struct{ entry, end uint64 }

// analyzeGo reads a Go executable: crypto/tls's (*Conn).Read and Write
// from .symtab or, in a stripped binary, from .gopclntab (which stripping
// keeps: the runtime needs it for stack traces), their return
// instructions, and the offsets to the socket's descriptor. It returns nil
// for a Go program without crypto/tls.
func analyzeGo(f *elf.File, r io.ReaderAt, goVer string) (*fileInfo, error) {
	ver, major, minor := goVersion(goVer)
	info := &fileInfo{kind: GoTLS, library: "Go " + ver + " crypto/tls", version: ver, major: major, minor: minor}
	funcs, how, err := goFuncs(f)
	if err != nil {
		info.reason = "Go without symbols: " + err.Error()
		return info, nil
	}
	if len(funcs) == 0 {
		return nil, nil // no crypto/tls in this program (or its methods were dead code)
	}
	info.goSymbols = how
	info.symbols = make(map[string]uint64, len(funcs))
	info.returns = make(map[string][]uint64, len(funcs))
	for name, fn := range funcs {
		off, ok := fileOffset(f, fn.entry)
		if !ok {
			info.reason = fmt.Sprintf("Go: %s at %#x is in no loaded segment", name, fn.entry)
			return info, nil
		}
		info.symbols[name] = off
		code, err := readAt(r, off, fn.end-fn.entry)
		if err != nil {
			info.reason = fmt.Sprintf("Go: read %s: %v", name, err)
			return info, nil
		}
		rets, err := returnOffsets(f.Machine, code)
		if err != nil {
			info.reason = fmt.Sprintf("Go: %s: %v", name, err)
			return info, nil
		}
		if len(rets) == 0 {
			info.reason = fmt.Sprintf("Go: no return instruction found in %s", name)
			return info, nil
		}
		for i := range rets {
			rets[i] += off
		}
		info.returns[name] = rets
	}
	if len(funcs) < 2 {
		info.reason = "Go: crypto/tls is linked without (*Conn).Read or (*Conn).Write"
	}
	ptr := uint64(8)
	if f.Class == elf.ELFCLASS32 {
		ptr = 4
	}
	info.goFD = goOffsets(f, ptr, minor)
	switch {
	case f.Machine == elf.EM_X86_64 && minor >= 17, f.Machine == elf.EM_AARCH64 && minor >= 18:
		info.goFD.RegABI = true
	}
	if major == 1 && !info.goFD.RegABI && info.reason == "" {
		info.reason = fmt.Sprintf("Go %s on %s passes arguments on the stack (register ABI from Go 1.17 on amd64, 1.18 on arm64): not supported", ver, machineName(f.Machine))
	}
	return info, nil
}

// goFuncs finds GoRead and GoWrite: in .symtab when the binary has one,
// else in .gopclntab. It returns how they were found.
func goFuncs(f *elf.File) (map[string]goFunc, string, error) {
	funcs := make(map[string]goFunc)
	syms, err := f.Symbols()
	if err == nil {
		for _, s := range syms {
			if (s.Name == GoRead || s.Name == GoWrite) && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
				funcs[s.Name] = goFunc{s.Value, s.Value + s.Size}
			}
		}
		return funcs, "symtab", nil
	}
	if !errors.Is(err, elf.ErrNoSymbols) {
		return nil, "", fmt.Errorf("symbols: %w", err)
	}
	sec := f.Section(".gopclntab")
	if sec == nil {
		sec = f.Section(".data.rel.ro.gopclntab")
	}
	text := f.Section(".text")
	if sec == nil || text == nil {
		return nil, "", errors.New("no .symtab and no .gopclntab")
	}
	if sec.Size > 1<<30 {
		return nil, "", fmt.Errorf(".gopclntab of %d bytes", sec.Size)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, "", fmt.Errorf("read .gopclntab: %w", err)
	}
	tab, err := newGoTable(data, text.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("parse .gopclntab: %w", err)
	}
	for _, name := range []string{GoRead, GoWrite} {
		if fn := tab.LookupFunc(name); fn != nil && fn.End > fn.Entry {
			funcs[name] = goFunc{fn.Entry, fn.End}
		}
	}
	return funcs, "pclntab", nil
}

// newGoTable parses a pclntab; debug/gosym panics on some corrupt tables,
// which must not take the agent down.
func newGoTable(data []byte, text uint64) (tab *gosym.Table, err error) {
	defer func() {
		if p := recover(); p != nil {
			tab, err = nil, fmt.Errorf("corrupt table: %v", p)
		}
	}()
	return gosym.NewTable(nil, gosym.NewLineTable(data, text))
}

// returnOffsets returns the offsets, from the start of code, of its return
// instructions.
func returnOffsets(m elf.Machine, code []byte) ([]uint64, error) {
	var rets []uint64
	switch m {
	case elf.EM_X86_64:
		for i := 0; i < len(code); {
			inst, err := x86asm.Decode(code[i:], 64)
			if err != nil {
				return nil, fmt.Errorf("decode at +%#x: %w", i, err)
			}
			if inst.Op == x86asm.RET {
				rets = append(rets, uint64(i))
			}
			i += inst.Len
		}
	case elf.EM_AARCH64:
		for i := 0; i+4 <= len(code); i += 4 {
			// RET Xn: 1101011 0 0 10 11111 000000 Rn 00000.
			if binary.LittleEndian.Uint32(code[i:])&0xfffffc1f == 0xd65f0000 {
				rets = append(rets, uint64(i))
			}
		}
	default:
		return nil, fmt.Errorf("return instructions on %s not decoded", machineName(m))
	}
	return rets, nil
}

// goOffsets reads the struct offsets from DWARF, or gives the layout every
// Go version since 1.9 has (tls.Conn.conn, net.conn.fd and netFD.pfd first
// fields; poll.FD.Sysfd after the 16-byte fdMutex).
func goOffsets(f *elf.File, ptr uint64, minor uint8) *GoOffsets {
	if o, err := dwarfOffsets(f, ptr); err == nil {
		return o
	}
	return &GoOffsets{ConnConn: 0, IfaceData: ptr, NetConnFD: 0, NetFDPFD: 0, PFDSysfd: 16, Source: fmt.Sprintf("layout of Go 1.%d", minor)}
}

// dwarfOffsets reads the offsets from the binary's DWARF.
func dwarfOffsets(f *elf.File, ptr uint64) (*GoOffsets, error) {
	d, err := f.DWARF()
	if err != nil {
		return nil, err
	}
	want := map[string]string{ // struct → member
		"crypto/tls.Conn":  "conn",
		"net.conn":         "fd",
		"net.netFD":        "pfd",
		"internal/poll.FD": "Sysfd",
	}
	got := make(map[string]uint64, len(want))
	rd := d.Reader()
	for len(got) < len(want) {
		e, err := rd.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			continue
		case dwarf.TagStructType:
			name, _ := e.Val(dwarf.AttrName).(string)
			member, ok := want[name]
			if !ok || !e.Children {
				rd.SkipChildren()
				continue
			}
			for {
				c, err := rd.Next()
				if err != nil {
					return nil, err
				}
				if c == nil || c.Tag == 0 {
					break
				}
				if c.Children {
					rd.SkipChildren()
				}
				if n, _ := c.Val(dwarf.AttrName).(string); c.Tag == dwarf.TagMember && n == member {
					if loc, ok := c.Val(dwarf.AttrDataMemberLoc).(int64); ok {
						got[name] = uint64(loc)
					}
				}
			}
		default:
			if e.Children {
				rd.SkipChildren()
			}
		}
	}
	if len(got) < len(want) {
		return nil, fmt.Errorf("DWARF has %d of the %d structs", len(got), len(want))
	}
	return &GoOffsets{
		ConnConn:  got["crypto/tls.Conn"],
		IfaceData: ptr,
		NetConnFD: got["net.conn"],
		NetFDPFD:  got["net.netFD"],
		PFDSysfd:  got["internal/poll.FD"],
		Source:    "DWARF",
	}, nil
}
