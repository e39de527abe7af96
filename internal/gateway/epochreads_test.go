package gateway

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestEpochReadsNeverOlderThanTheCaller: an authentication never uses a
// read of the auth epoch that began before it asked, and those that ask
// while a read is under way share the next one.
func TestEpochReadsNeverOlderThanTheCaller(t *testing.T) {
	var e epochReads
	var reads atomic.Int64
	started := make(chan int64, 10)
	release := make(chan struct{}, 10)
	read := func(ctx context.Context) (int64, error) {
		n := reads.Add(1) // the epoch a read returns is its own number
		started <- n
		<-release
		return n, nil
	}
	ctx := context.Background()
	first := make(chan int64, 1)
	go func() { got, _ := e.epoch(ctx, read); first <- got }()
	if n := <-started; n != 1 {
		t.Fatalf("first read: got %d, want 1", n)
	}
	// Asked while read 1 is under way: they must wait for read 2.
	const later = 5
	var wg sync.WaitGroup
	got := make([]int64, later)
	var asked sync.WaitGroup
	asked.Add(later)
	for i := range later {
		wg.Go(func() {
			asked.Done()
			got[i], _ = e.epoch(ctx, read)
		})
	}
	asked.Wait()
	for { // until one of them waits for the next read
		e.mu.Lock()
		waiting := e.next != nil
		e.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	release <- struct{}{}
	if g := <-first; g != 1 {
		t.Errorf("first caller: got the epoch of read %d, want 1", g)
	}
	if n := <-started; n != 2 {
		t.Fatalf("second read: got %d, want 2", n)
	}
	release <- struct{}{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-started: // a later read, for callers that asked once read 2 had begun
			release <- struct{}{}
		case <-done:
			waiting = false
		}
	}
	for i, g := range got {
		if g < 2 {
			t.Errorf("caller %d that asked during read 1: got the epoch of read %d, want a later read", i, g)
		}
	}
}
