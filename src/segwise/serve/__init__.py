"""Real-time segment assignment over HTTP (``segwise serve MODEL``).

`create_app(model_path, settings)` builds the FastAPI application; nothing is
loaded until the server starts it. See `segwise.serve.app` for the endpoints.
"""

from segwise.serve.app import create_app
from segwise.serve.settings import Settings

__all__ = ["create_app", "Settings"]
