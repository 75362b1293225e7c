// datastorage is the data storage API: an in-memory record store behind
// GET/PUT/DELETE /v1/records/{id} and GET /v1/records, with /healthz and /readyz, on :8085.
package main

import (
	"io"
	"net/http"
	"os"

	"example.com/kubernaut/internal/httpx"
	"example.com/kubernaut/internal/kv"
	"example.com/kubernaut/internal/version"
)

const program = "datastorage"

func routes(store *kv.Store, health *httpx.Health) *http.ServeMux {
	mux := http.NewServeMux()
	health.Register(mux)
	mux.HandleFunc("GET /v1/records", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ids": store.IDs()})
	})
	mux.HandleFunc("GET /v1/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := store.Get(r.PathValue("id"))
		if !ok {
			httpx.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rec)
	})
	mux.HandleFunc("PUT /v1/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			httpx.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		rec, created := store.Put(r.PathValue("id"), string(body))
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		httpx.WriteJSON(w, status, rec)
	})
	mux.HandleFunc("DELETE /v1/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !store.Delete(r.PathValue("id")) {
			httpx.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout, program)
		return
	}
	log := httpx.Logger(program)
	health := &httpx.Health{}
	mux := routes(kv.New(), health)
	health.SetReady(true)
	ctx, stop := httpx.SignalContext()
	defer stop()
	if err := httpx.Serve(ctx, log, httpx.Addr("LISTEN_ADDR", ":8085"), httpx.Logged(log, mux)); err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}
