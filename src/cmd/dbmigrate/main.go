// dbmigrate applies kubernaut's schema migrations in order. The migrations are embedded in the
// binary; without a database it prints the plan (dry run), which is what the image does by default.
//
//	dbmigrate [-to N] [-dry-run]   plan/apply migrations up to version N (default: latest)
//	dbmigrate -list                list the embedded migrations
//	dbmigrate --version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"example.com/kubernaut/internal/version"
)

const program = "dbmigrate"

type migration struct {
	Version int
	Name    string
	SQL     string
}

var migrations = []migration{
	{1, "create_audit_events", "CREATE TABLE audit_events (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now());"},
	{2, "create_workflow_runs", "CREATE TABLE workflow_runs (id TEXT PRIMARY KEY, phase TEXT NOT NULL, started TIMESTAMPTZ);"},
	{3, "index_audit_kind", "CREATE INDEX audit_events_kind ON audit_events (kind);"},
	{4, "add_run_owner", "ALTER TABLE workflow_runs ADD COLUMN owner TEXT;"},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	list := fs.Bool("list", false, "list the embedded migrations")
	from := fs.Int("from", 0, "the schema version the database is at")
	to := fs.Int("to", 0, "migrate up to this version (0: latest)")
	dsn := fs.String("dsn", os.Getenv("DATABASE_URL"), "database to migrate (empty: dry run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		version.Print(stdout, program)
		return 0
	}
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].Version < migrations[j].Version })
	latest := migrations[len(migrations)-1].Version
	if *list {
		for _, m := range migrations {
			fmt.Fprintf(stdout, "%04d %s\n", m.Version, m.Name)
		}
		return 0
	}
	target := *to
	if target == 0 {
		target = latest
	}
	if target > latest || target < 0 || *from < 0 || *from > latest {
		fmt.Fprintf(stderr, "%s: versions must be within 0..%d\n", program, latest)
		return 2
	}
	if *dsn != "" {
		fmt.Fprintf(stderr, "%s: no database driver is built in; run without -dsn for a dry run\n", program)
		return 1
	}
	pending := 0
	for _, m := range migrations {
		if m.Version > *from && m.Version <= target {
			fmt.Fprintf(stdout, "-- %04d %s\n%s\n", m.Version, m.Name, m.SQL)
			pending++
		}
	}
	fmt.Fprintf(stdout, "%s: dry run: %d migration(s) from version %d to %d\n", program, pending, *from, target)
	return 0
}
