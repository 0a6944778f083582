"""Storage backends behind one interface (``base.Store``)."""
