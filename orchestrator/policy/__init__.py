"""ADR-028 as code: registry tiers, builder selection, advisories, exceptions, Dockerfile lint, audit.

Everything here is pure: it reasons about image names as the policy writes them (never the mirror they
are pulled from) and about probe results handed to it; it never talks to an engine.
"""
