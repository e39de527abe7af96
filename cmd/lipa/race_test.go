//go:build race

package main

// raceEnabled reports whether the tests run with the race detector, so
// that the replicas they start are built with it too.
const raceEnabled = true
