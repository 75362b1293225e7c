package kv

import "testing"

func TestPutGetRevision(t *testing.T) {
	s := New()
	if _, ok := s.Get("a"); ok {
		t.Fatal("empty store returned a record")
	}
	r, created := s.Put("a", "one")
	if !created || r.Revision != 1 {
		t.Fatalf("first put: created=%v revision=%d", created, r.Revision)
	}
	r, created = s.Put("a", "two")
	if created || r.Revision != 2 || r.Value != "two" {
		t.Fatalf("second put: %+v created=%v", r, created)
	}
	if got := s.IDs(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("ids: %v", got)
	}
	if !s.Delete("a") || s.Delete("a") {
		t.Fatal("delete")
	}
}
