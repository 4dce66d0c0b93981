"""`harness try IMAGE`: boot any image, say how far it got, write its guest file (#17)."""
