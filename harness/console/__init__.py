"""The console: cleaning, matching (pure) and the live session (processes)."""
