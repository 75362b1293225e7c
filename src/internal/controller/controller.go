// Package controller is a minimal reconcile loop: a Reconciler is called every Interval until
// the context ends, with health and readiness served alongside.
package controller

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"example.com/kubernaut/internal/httpx"
)

// Reconciler does one pass of work; generation counts passes from 1.
type Reconciler interface {
	Reconcile(ctx context.Context, generation uint64) (string, error)
}

// ReconcileFunc adapts a function to Reconciler.
type ReconcileFunc func(ctx context.Context, generation uint64) (string, error)

// Reconcile calls f.
func (f ReconcileFunc) Reconcile(ctx context.Context, generation uint64) (string, error) {
	return f(ctx, generation)
}

// Options configures Run.
type Options struct {
	Name        string
	Interval    time.Duration
	HealthAddr  string // e.g. ":8081"
	Log         *slog.Logger
	MaxFailures int // consecutive failures before readiness drops; 0 means 3
}

// Run reconciles every o.Interval, logging one line per loop, and serves /healthz and /readyz.
func Run(ctx context.Context, o Options, r Reconciler) error {
	if o.MaxFailures == 0 {
		o.MaxFailures = 3
	}
	health := &httpx.Health{}
	mux := http.NewServeMux()
	health.Register(mux)

	errc := make(chan error, 1)
	go func() { errc <- httpx.Serve(ctx, o.Log, o.HealthAddr, mux) }()

	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	var generation uint64
	failures := 0
	for {
		generation++
		start := time.Now()
		result, err := r.Reconcile(ctx, generation)
		if err != nil {
			failures++
			o.Log.Error("reconcile failed", "controller", o.Name, "generation", generation, "error", err)
		} else {
			failures = 0
			o.Log.Info("reconciled", "controller", o.Name, "generation", generation, "result", result,
				"duration", time.Since(start).String())
		}
		health.SetReady(failures < o.MaxFailures)
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case <-ticker.C:
		}
	}
}
