// Package version holds the build version every kubernaut binary reports with --version.
package version

import (
	"fmt"
	"io"
	"runtime"
)

// Version is overridden at link time with -X example.com/kubernaut/internal/version.Version=...
var Version = "0.1.0"

// String is the one-line version banner: "<program> <version> (<go version> <os>/<arch>)".
func String(program string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", program, Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Print writes the banner and a newline to w.
func Print(w io.Writer, program string) {
	fmt.Fprintln(w, String(program))
}

// Requested reports whether args (os.Args[1:]) ask for the version.
func Requested(args []string) bool {
	for _, a := range args {
		if a == "--version" || a == "-version" || a == "version" {
			return true
		}
	}
	return false
}
