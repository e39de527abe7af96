package darajasim

// RecordedPushes returns how many STK pushes s has accepted and recorded,
// so tests can prove a fault recorded none.
func RecordedPushes(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stk)
}
