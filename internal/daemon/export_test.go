package daemon

// Kill cuts d off as kill -9 would, as far as the cluster sees: its engine
// connection closes at once, nothing returned, no leave.
func Kill(d *Daemon) { d.engine.Conn().Close() }
