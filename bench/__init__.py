"""Benchmark harness: does initializing a large student from a small trained teacher help?"""

__version__ = "0.1.0"
