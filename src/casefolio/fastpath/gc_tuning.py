"""Start-up objects frozen out of the garbage collector's sight, for a server's life.

Once start-up is done, the objects it made (modules, routes, models, compiled statements)
never become garbage. Left in the collector's generations, every full collection walks them
all, and under load one ran about once a second and stopped the event loop while freeing
nothing (bench/README.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_objects_frozen(enabled: bool = True) -> Iterator[None]:
    """While inside, the objects that exist on entry are frozen (`gc.freeze`); on exit
    they are collectable again. With `enabled` false, nothing happens."""
    if not enabled:
        yield
        return
    gc.collect()  # start-up's own garbage goes first; frozen objects are never freed
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
