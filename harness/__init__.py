"""guest-harness: boot guest operating systems on every accelerator and score them."""

__version__ = "0.1.0"
