// Package kv is a concurrency-safe in-memory record store with per-record revisions.
package kv

import (
	"sort"
	"sync"
	"time"
)

// Record is one stored value.
type Record struct {
	ID        string    `json:"id"`
	Value     string    `json:"value"`
	Revision  uint64    `json:"revision"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Store holds records by id.
type Store struct {
	mu      sync.RWMutex
	records map[string]Record
}

// New returns an empty store.
func New() *Store { return &Store{records: map[string]Record{}} }

// Get returns the record with id.
func (s *Store) Get(id string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.records[id]
	return r, ok
}

// Put stores value under id, bumping its revision; created reports a new id.
func (s *Store) Put(id, value string) (rec Record, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.records[id]
	rec = Record{ID: id, Value: value, Revision: old.Revision + 1, UpdatedAt: time.Now().UTC()}
	s.records[id] = rec
	return rec, !ok
}

// Delete removes id; it reports whether it existed.
func (s *Store) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.records[id]
	delete(s.records, id)
	return ok
}

// IDs lists the stored ids in order.
func (s *Store) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.records))
	for id := range s.records {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
