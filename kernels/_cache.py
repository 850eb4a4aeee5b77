"""On-disk cache of the compiled CPU kernels, so that a second process does
not compile them again.

The row drivers (:func:`._jit.row_kernel`), the functions called from Python,
are cached through Numba's own cache machinery with three changes:

* Location: ``$GUMBEL_NP_CACHE_DIR`` when set, else the user's cache folder
  (``$XDG_CACHE_HOME/gumbel_np`` or ``~/.cache/gumbel_np`` on Linux,
  ``~/Library/Caches/gumbel_np`` on macOS, ``%LOCALAPPDATA%\\gumbel_np`` on
  Windows), never the installed package's folder, which may be read-only or
  shared.  ``GUMBEL_NP_CACHE=0`` turns the cache off.
* Freshness: Numba keys a cache by its source file's time stamp, which misses
  a change in another file whose helpers were inlined.  Here the folder is
  named by a hash of every kernel source file, the Numba, llvmlite and Python
  versions (:data:`TAG`), so any change starts a fresh folder.  Within it
  entries are keyed by kernel name, signature and CPU (Numba's
  ``magic_tuple``: target triple, CPU name and features), so a folder shared
  by different machines stays correct.
* Failures: a folder that cannot be created is no cache (compile as before);
  one that cannot be written is read from only; a failed write is ignored.

Clear it with ``python -m gumbel_np cache --clear`` (or delete the folder).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import tempfile

import llvmlite
import numba
from numba.core import caching

_SOURCES = pathlib.Path(__file__).resolve().parent


def _tag() -> str:
    h = hashlib.sha256()
    for path in sorted(_SOURCES.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(f"{numba.__version__} {llvmlite.__version__} {sys.version}".encode())
    return f"numba-{numba.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-{h.hexdigest()[:16]}"


TAG = _tag()
"""Name of this build's folder in the cache root."""


def cache_root() -> pathlib.Path | None:
    """The cache root folder, or None when the cache is turned off."""
    if os.environ.get("GUMBEL_NP_CACHE", "1").strip() == "0":
        return None
    env = os.environ.get("GUMBEL_NP_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return pathlib.Path(base) / "gumbel_np"
    if sys.platform == "darwin":
        return pathlib.Path.home() / "Library" / "Caches" / "gumbel_np"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "gumbel_np"


def cache_dir() -> pathlib.Path | None:
    """This build's cache folder (``cache_root() / TAG``), or None."""
    root = cache_root()
    return None if root is None else root / TAG


def _usable(path: pathlib.Path) -> bool:
    """Whether ``path`` can be read from (created if need be)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return path.is_dir() and os.access(path, os.R_OK | os.X_OK)


class _Locator(caching._CacheLocator):
    def __init__(self, py_func, path):
        self._lineno = py_func.__code__.co_firstlineno
        self._path = str(path)

    def ensure_cache_path(self):
        os.makedirs(self._path, exist_ok=True)
        tempfile.TemporaryFile(dir=self._path).close()  # writable, or OSError

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return TAG

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        path = cache_dir()
        if path is None or not _usable(path):
            return None
        return cls(py_func, path)


class _Impl(caching.CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _KernelCache(caching.FunctionCache):
    """A :class:`numba.core.caching.FunctionCache` keyed by kernel name."""

    _impl_class = _Impl

    def __init__(self, py_func, name):
        super().__init__(py_func)
        self._kernel = f"{name}.{py_func.__name__}"
        # One index file per kernel and driver (the drivers are closures
        # sharing one source line).
        self._cache_file = caching.IndexDataCacheFile(
            cache_path=self._cache_path, filename_base=self._kernel, source_stamp=TAG
        )

    def _index_key(self, sig, codegen):
        # The folder already names the sources; the kernel name tells the
        # drivers apart (Numba would pickle their closure cells instead).
        return (sig, codegen.magic_tuple(), self._kernel)

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError:
            pass  # a read-only or full cache: the kernel runs, uncached


def cached(dispatcher, name):
    """Give the Numba ``dispatcher`` the on-disk cache under ``name`` (a
    dotted kernel name); unchanged where there is no usable cache folder."""
    try:
        dispatcher._cache = _KernelCache(dispatcher.py_func, name)
    except RuntimeError:  # no locator: no usable folder
        pass
    return dispatcher
