"""The version of segwise, apart from the package root so that any module can import it
without importing the public API (and everything behind it)."""

__version__ = "0.1.0"
