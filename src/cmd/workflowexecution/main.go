// workflowexecution is the WorkflowExecution controller: every second it reconciles the
// pending workflow runs (here: a simulated queue), and serves /healthz and /readyz on :8081.
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

const program = "workflowexecution"

// phases a workflow run moves through, one step per reconcile.
var phases = []string{"Pending", "Running", "Completed"}

type reconciler struct {
	runs map[string]int // run name -> index into phases
}

func (r *reconciler) Reconcile(_ context.Context, generation uint64) (string, error) {
	if generation%3 == 1 {
		r.runs[fmt.Sprintf("run-%d", generation)] = 0
	}
	advanced, completed := 0, 0
	for name, phase := range r.runs {
		if phase == len(phases)-1 {
			delete(r.runs, name)
			completed++
			continue
		}
		r.runs[name] = phase + 1
		advanced++
	}
	return fmt.Sprintf("advanced=%d completed=%d active=%d", advanced, completed, len(r.runs)), nil
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
		HealthAddr: httpx.Addr("HEALTH_ADDR", ":8081"),
		Log:        log,
	}, &reconciler{runs: map[string]int{}})
	if err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}
