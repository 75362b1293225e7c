// leader-elect takes a file lease so that one replica of a controller sharing a volume leads:
// it creates the lease file exclusively (or takes it over once its renew time is older than the
// lease duration), renews it until SIGTERM, then releases it.
//
//	leader-elect -lease /var/run/kubernaut/leader -identity $HOSTNAME
//	leader-elect --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"example.com/kubernaut/internal/version"
)

const program = "leader-elect"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	lease := fs.String("lease", filepath.Join(os.TempDir(), "kubernaut-leader"), "lease file")
	host, _ := os.Hostname()
	identity := fs.String("identity", host, "this candidate's identity")
	duration := fs.Duration("lease-duration", 15*time.Second, "how long a lease lasts without renewal")
	once := fs.Bool("once", false, "try to acquire once and exit 0 (leader) or 3 (not leader)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		version.Print(stdout, program)
		return 0
	}

	for {
		held, err := acquire(*lease, *identity, *duration, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", program, err)
			return 1
		}
		if held {
			fmt.Fprintf(stdout, "%s: %s leads (lease %s)\n", program, *identity, *lease)
			break
		}
		if *once {
			return 3
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*duration / 3):
		}
	}
	if *once {
		return 0
	}
	renew := time.NewTicker(*duration / 3)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = os.Remove(*lease)
			fmt.Fprintf(stdout, "%s: %s released the lease\n", program, *identity)
			return 0
		case now := <-renew.C:
			if err := write(*lease, *identity, now); err != nil {
				fmt.Fprintf(stderr, "%s: renew: %v\n", program, err)
				return 1
			}
		}
	}
}

// acquire takes the lease if it is free, already ours, or expired.
func acquire(path, identity string, duration time.Duration, now time.Time) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		_, err = fmt.Fprintf(f, "%s %d\n", identity, now.Unix())
		return err == nil, errors.Join(err, f.Close())
	}
	if !errors.Is(err, os.ErrExist) {
		return false, err
	}
	holder, renewed, err := read(path)
	if err != nil {
		return false, err
	}
	if holder == identity || now.Sub(renewed) > duration {
		return true, write(path, identity, now)
	}
	return false, nil
}

func read(path string) (string, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", time.Time{}, err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return "", time.Time{}, fmt.Errorf("%s: malformed lease %q", path, data)
	}
	sec, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%s: malformed renew time: %w", path, err)
	}
	return fields[0], time.Unix(sec, 0), nil
}

func write(path, identity string, now time.Time) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%s %d\n", identity, now.Unix())), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
