package store

// Store stores.
type Store struct{}
