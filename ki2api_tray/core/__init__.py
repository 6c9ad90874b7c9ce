"""The pure translation core: stdlib only, no I/O, no threads, no web or UI types."""
