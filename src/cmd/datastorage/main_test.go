package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"example.com/kubernaut/internal/httpx"
	"example.com/kubernaut/internal/kv"
)

func TestRecordsRoundTrip(t *testing.T) {
	srv := httptest.NewServer(routes(kv.New(), &httpx.Health{}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/records/r1", strings.NewReader("hello"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("put: %v %v", err, resp)
	}
	resp, err = http.Get(srv.URL + "/v1/records/r1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get: %v %v", err, resp)
	}
	resp, _ = http.Get(srv.URL + "/v1/records/missing")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
}
