package charts

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// dockerfile is the repository's Dockerfile, read line by line.
type dockerfile struct {
	from  []string // the images of the FROM lines, in order
	build string   // the RUN line that builds the binary, without RUN
	user  string   // the final stage's USER
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "FROM":
			d.from = append(d.from, fields[1])
			d.user = ""
		case "RUN":
			if cmd := strings.Join(fields[1:], " "); strings.Contains(cmd, "go build") {
				d.build = cmd
			}
		case "USER":
			d.user = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStaticBuild runs the Dockerfile's go build line (its output moved to
// a temporary directory) and checks what the image's premise is: a static
// binary, which runs on distroless/static where there is no libc and no
// dynamic loader. Docker is not needed: the image itself is not built. It
// also checks the build image matches go.mod's Go and the final stage runs
// as the non-root user the chart gives the hub.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the static build compiles the whole binary")
	}
	d := readDockerfile(t)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if len(d.from) != 2 {
		t.Fatalf("FROM lines %v, want a build stage and a final stage", d.from)
	}
	if want := "golang:" + string(goVersion[1]); d.from[0] != want {
		t.Errorf("the build stage is FROM %s, want %s (go.mod's go %s)", d.from[0], want, goVersion[1])
	}
	if d.from[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("the final stage is FROM %s, want gcr.io/distroless/static-debian12:nonroot", d.from[1])
	}
	if d.user != "65532:65532" {
		t.Errorf("the final stage's USER is %q, want 65532:65532 (the chart's hub.runAsUser and runAsGroup)", d.user)
	}
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"runAsUser: 65532", "runAsGroup: 65532"} {
		if !bytes.Contains(values, []byte("\n  "+v+"\n")) {
			t.Errorf("values.yaml has no hub %s, the Dockerfile's USER", v)
		}
	}

	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader, which distroless/static has not")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Fatal(err)
	} else if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries (DT_NEEDED) %v: a cgo dependency crept in", libs)
	}
	// -s -w: no symbol table, no DWARF.
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("the binary has section %s: -ldflags \"-s -w\" did not strip it", s.Name)
		}
	}
	// -trimpath: the build machine's paths are not in the binary.
	wd, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(wd+"/")) {
		t.Errorf("the binary holds the checkout's path %s: -trimpath did not apply", wd)
	}

	// It runs, and has the two commands the chart starts.
	for _, sub := range []string{"agent", "hub"} {
		b, err := exec.Command(bin, sub, "--help").CombinedOutput()
		if err != nil {
			t.Errorf("wirescope %s --help: %v\n%s", sub, err, b)
			continue
		}
		if !bytes.Contains(b, []byte("--token-file")) {
			t.Errorf("wirescope %s --help does not list --token-file:\n%s", sub, b)
		}
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// staticBinary builds wirescope once with the Dockerfile's go build line,
// its output moved to a temporary directory, and returns its path.
func staticBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Dockerfile's build compiles the whole binary")
	}
	d := readDockerfile(t)
	const out = "/out/wirescope"
	if !strings.HasPrefix(d.build, "CGO_ENABLED=0 go build ") || !strings.Contains(d.build, " -o "+out+" ") ||
		!strings.Contains(d.build, `-ldflags "-s -w"`) || !strings.Contains(d.build, "-trimpath") {
		t.Fatalf("the Dockerfile builds with %q, want CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" -o %s", d.build, out)
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "wirescope-image-"); buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "wirescope")
		cmd := exec.Command("sh", "-c", strings.Replace(d.build, " -o "+out+" ", " -o "+bin+" ", 1))
		cmd.Dir = ".." // the Dockerfile's WORKDIR holds the repository
		cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %w\n%s", d.build, err, b)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// TestChartFlags checks the binary the image holds takes every flag the
// chart passes to `wirescope agent` and `wirescope hub`, with every value
// set: a flag the binary does not know would crash-loop the pods.
func TestChartFlags(t *testing.T) {
	helm := binary(t, "helm")
	bin := staticBinary(t)
	help := map[string]string{}
	for _, sub := range []string{"agent", "hub"} {
		b, err := exec.Command(bin, sub, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("wirescope %s --help: %v\n%s", sub, err, b)
		}
		help[sub] = string(b)
	}
	flagRE := regexp.MustCompile(`^--([a-z0-9-]+)`)
	missing := map[string]bool{}
	for _, vs := range valueSets {
		out, err := render(t, helm, rel, ns, vs.values)
		if err != nil {
			t.Fatal(err)
		}
		m := decode(t, out)
		for _, c := range []corev1.Container{m.agent(t).Spec.Template.Spec.Containers[0], m.hub(t).Spec.Template.Spec.Containers[0]} {
			if len(c.Args) == 0 || help[c.Args[0]] == "" {
				t.Fatalf("%s container runs %v, want agent or hub first", c.Name, c.Args)
			}
			for _, a := range c.Args[1:] {
				f := flagRE.FindStringSubmatch(a)
				if f == nil {
					t.Errorf("%s argument %q is not a flag", c.Name, a)
					continue
				}
				if !regexp.MustCompile(`(?m)^\s+(-[a-z], )?--` + regexp.QuoteMeta(f[1]) + `\b`).MatchString(help[c.Args[0]]) {
					missing["wirescope "+c.Args[0]+" --"+f[1]] = true
				}
			}
		}
	}
	for f := range missing {
		t.Errorf("the chart passes %s, which the binary does not take", f)
	}
}
