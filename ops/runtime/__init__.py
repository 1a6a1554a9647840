"""The production runtime: `lde up`, the stream worker's wiring (directory, delivery, routes), the
embedded engines, and the client other commands use to reach a running service."""
