"""Small helpers shared across unimm (file I/O, seeding)."""
