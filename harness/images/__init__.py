"""Guest images: sources, the cache, build recipes."""
