"""The ``python: module:function`` escape hatch: resolving user code referenced from YAML.

``kstream validate`` (and ``kstream run`` before it contacts the broker) imports each referenced
module to check the reference (:mod:`kstream.pipeline.checks`), which runs the module's top-level
code and nothing else; the callables are loaded when a task builds its operators.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kstream.errors import ExpressionError

_REF_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _import(module: str, search_paths: Sequence[str]) -> Any:
    added = [str(p) for p in search_paths if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        importlib.invalidate_caches()
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            paths = f" (also searched {', '.join(map(str, search_paths))})" if search_paths else ""
            raise ExpressionError(f"python: module {module!r} not found{paths}") from exc
        raise ExpressionError(f"python: importing {module!r} failed: {exc}") from exc
    except Exception as exc:
        what = f"{type(exc).__name__}: {exc}"
        raise ExpressionError(f"python: importing {module!r} failed: {what}") from exc
    finally:
        for entry in added:
            sys.path.remove(entry)


def load_python_callable(ref: str, *, search_paths: Sequence[str] = ()) -> Callable[..., Any]:
    """Resolve the ``python: module:function`` escape hatch to a callable.

    Args:
        ref: ``"module:attr"``; both parts may be dotted (``pkg.mod:Class.method``).
        search_paths: directories put in front of ``sys.path`` during the import only (e.g.
            the pipeline file's directory).

    Returns:
        The attribute (a function, class or other callable), not called.

    Raises:
        ExpressionError: ``ref`` is not of the form ``module:attr``, the module cannot be found
            or fails to import, or the attribute does not exist or is not callable.
    """
    ref = ref.strip() if isinstance(ref, str) else ref
    if not isinstance(ref, str) or not _REF_RE.match(ref):
        raise ExpressionError(f"python: {ref!r} is not of the form 'module:function'")
    module, attr_path = ref.split(":")
    target = _import(module, search_paths)
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ExpressionError(f"python: module {module!r} has no attribute {attr_path!r}")
        target = getattr(target, attr)
    if not callable(target):
        raise ExpressionError(f"python: {ref!r} is a {type(target).__name__}, not callable")
    return target
