"""Payloads: steps run inside the guest after its boot, and the tests they report.

`framing` types a step and finds its markers (pure), `parsers` reads TAP,
JUnit, ATF and plain lines (pure), `step` follows one step's console (pure),
`run` drives the steps on a live console, `image` builds the payload CD.
"""
