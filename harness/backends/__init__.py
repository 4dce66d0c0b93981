"""Backends: command lines (qemu), host probes and canaries, VM processes."""
