package membership

// Halt stops heartbeating without leaving, as a killed node would.
func (m *Membership) Halt() {
	m.stop()
	<-m.done
}
