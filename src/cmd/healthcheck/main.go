// healthcheck GETs a URL and exits 0 when the answer is 2xx, 1 otherwise: a probe for images
// without curl or wget (HEALTHCHECK CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8080/healthz"]).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"example.com/kubernaut/internal/version"
)

const program = "healthcheck"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	quiet := fs.Bool("q", false, "print nothing on success")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-timeout 3s] [-q] URL\n       %s --version\n", program, program)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		version.Print(stdout, program)
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	url := fs.Arg(0)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 2
	}
	req.Header.Set("User-Agent", version.String(program))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "%s: %s: %s\n", program, url, resp.Status)
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %s: %s\n", program, url, resp.Status)
	}
	return 0
}
