package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the release this binary was built as, set at link time with
// -ldflags "-X main.version=v1.2.3" (the Dockerfile sets it from its
// VERSION build argument). Empty, the module version that Go recorded in
// the binary is used instead.
var version string

// buildVersion describes the running binary, as `lipa version` prints it and
// /readyz reports it.
type buildVersion struct {
	// Version is the release set at link time, else the main module's
	// version as Go recorded it (a tag such as "v1.4.0", or a pseudo-version
	// such as "v0.0.0-20261207220600-8f95e88e1234+dirty" when built from a
	// VCS checkout); "devel" when neither is known.
	Version string
	// Revision is the VCS commit the binary was built from, and Time its
	// commit time (RFC 3339, UTC); both empty when the build recorded no VCS
	// information (go build -buildvcs=false, or no .git in the build).
	Revision, Time string
	// Modified reports that the checkout had uncommitted changes.
	Modified bool
	// Go is the Go toolchain that built the binary (e.g. "go1.26.8"), and
	// Platform its GOOS/GOARCH.
	Go, Platform string
}

// readBuildVersion returns the running binary's buildVersion.
func readBuildVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi, version)
}

// versionOf builds a buildVersion from Go's build information (nil when
// the binary has none) and the link-time release (empty when not set).
func versionOf(bi *debug.BuildInfo, linked string) buildVersion {
	v := buildVersion{Version: strings.TrimSpace(linked), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		if v.Version == "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// Short is the one-word version /readyz reports: Version, with the first
// twelve characters of the revision appended to "devel" when known
// ("devel+8f95e88e1234", "+dirty" when modified).
func (v buildVersion) Short() string {
	if v.Version != "devel" || v.Revision == "" {
		return v.Version
	}
	s := "devel+" + v.Revision[:min(12, len(v.Revision))]
	if v.Modified {
		s += "+dirty"
	}
	return s
}

// String is the line `lipa version` prints, e.g.
// "lipa v1.4.0 (revision 8f95e88e1234…, 2026-12-07T22:06:00Z) go1.26.8 linux/amd64".
func (v buildVersion) String() string {
	var b strings.Builder
	b.WriteString("lipa " + v.Version)
	var vcs []string
	if v.Revision != "" {
		vcs = append(vcs, "revision "+v.Revision)
	}
	if v.Time != "" {
		vcs = append(vcs, v.Time)
	}
	if v.Modified {
		vcs = append(vcs, "modified")
	}
	if len(vcs) > 0 {
		b.WriteString(" (" + strings.Join(vcs, ", ") + ")")
	}
	b.WriteString(" " + v.Go + " " + v.Platform)
	return b.String()
}

// cmdVersion runs `lipa version`: one line naming the version, the VCS
// revision and time when the build recorded them, the Go toolchain and the
// platform. It needs no configuration.
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return usageError("usage: lipa version")
	}
	fmt.Fprintln(stdout, readBuildVersion())
	return nil
}
