"""``monitor demo``: a real model, real traffic, drift injected part-way, alerts to a local receiver."""
