"""One writer per official dataset layout; each samples its data from the shared pictures and writes its files."""
