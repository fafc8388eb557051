"""imageflow-gen: typed ImageFlowCanvas topology in, deployable infrastructure out."""

import os

__version__ = "0.1.0"

# pydantic looks for plugins through package entry points at import, which costs a CLI start
# about 20 ms; imageflow-gen uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
