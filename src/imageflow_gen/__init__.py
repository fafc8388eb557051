"""imageflow-gen: typed ImageFlowCanvas topology in, deployable infrastructure out."""

__version__ = "0.1.0"
