"""A backbone cut at a depth, trained by the thesis protocol, timed and measured."""
