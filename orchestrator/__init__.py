"""orch: a container build orchestrator.

The package is laid out as the pipeline it runs, each module one stage, imports pointing down the
pipeline only: config -> graph -> policy -> lock -> plan -> (engine) -> build -> verify -> publish -> report.
"""

__version__ = "0.1.0"
