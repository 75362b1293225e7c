// gateway is the signal ingestion gateway: it accepts alert signals as JSON on POST /v1/signals,
// reports what it has seen on GET /v1/signals, and serves /healthz and /readyz on :8080.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"time"

	"example.com/kubernaut/internal/httpx"
	"example.com/kubernaut/internal/version"
)

const program = "gateway"

type signal struct {
	Alert    string    `json:"alert"`
	Severity string    `json:"severity"`
	Received time.Time `json:"received"`
}

type gateway struct {
	mu      sync.Mutex
	signals []signal
}

func (g *gateway) post(w http.ResponseWriter, r *http.Request) {
	var s signal
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&s); err != nil || s.Alert == "" {
		httpx.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"alert\": ..., \"severity\": ...}"})
		return
	}
	s.Received = time.Now().UTC()
	g.mu.Lock()
	g.signals = append(g.signals, s)
	n := len(g.signals)
	g.mu.Unlock()
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"accepted": s, "count": n})
}

func (g *gateway) list(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	out := append([]signal(nil), g.signals...)
	g.mu.Unlock()
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"signals": out, "count": len(out)})
}

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout, program)
		return
	}
	log := httpx.Logger(program)
	g := &gateway{}
	health := &httpx.Health{}
	mux := http.NewServeMux()
	health.Register(mux)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"version": version.String(program)})
	})
	mux.HandleFunc("POST /v1/signals", g.post)
	mux.HandleFunc("GET /v1/signals", g.list)
	health.SetReady(true)

	ctx, stop := httpx.SignalContext()
	defer stop()
	if err := httpx.Serve(ctx, log, httpx.Addr("LISTEN_ADDR", ":8080"), httpx.Logged(log, mux)); err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}
