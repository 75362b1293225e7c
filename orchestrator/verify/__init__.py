"""Verification of built images: binaries' ELF machine and Go build info, read without an engine."""
