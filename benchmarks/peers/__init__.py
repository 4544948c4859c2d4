"""One adapter per store; each runs the same workload (see ``base.Peer``)."""
