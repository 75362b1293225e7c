// notification is the Notification controller: every second it drains the pending
// notifications (here: generated ones) to their channels, and serves /healthz and /readyz on :8082.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"example.com/kubernaut/internal/controller"
	"example.com/kubernaut/internal/httpx"
	"example.com/kubernaut/internal/version"
)

const program = "notification"

var channels = []string{"slack", "email", "pagerduty"}

type reconciler struct {
	sent map[string]uint64 // channel -> notifications delivered
}

func (r *reconciler) Reconcile(_ context.Context, generation uint64) (string, error) {
	ch := channels[generation%uint64(len(channels))]
	r.sent[ch]++
	return fmt.Sprintf("delivered to %s (total %d)", ch, r.sent[ch]), nil
}

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout, program)
		return
	}
	log := httpx.Logger(program)
	log.Info("starting", "version", version.String(program))
	ctx, stop := httpx.SignalContext()
	defer stop()
	err := controller.Run(ctx, controller.Options{
		Name:       program,
		Interval:   time.Second,
		HealthAddr: httpx.Addr("HEALTH_ADDR", ":8082"),
		Log:        log,
	}, &reconciler{sent: map[string]uint64{}})
	if err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}
