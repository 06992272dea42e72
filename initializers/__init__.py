"""Initializers of the student network, registered by name.

Importing this package registers the built-in initializers; `available()` adds plugins
from the `bench.initializers` entry-point group.
"""

from initializers import standard, transfer  # noqa: F401  (registration side effects)
from initializers import data_dependent, growth, ki, peers  # noqa: F401  (registration side effects)
from initializers import phi  # noqa: F401  (registration side effects)
from initializers.registry import (
    Compute,
    InitContext,
    Initializer,
    InitResult,
    available,
    get,
    register,
)

__all__ = ["Compute", "InitContext", "InitResult", "Initializer", "available", "get", "register"]
