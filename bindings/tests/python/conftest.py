"""The binding tests run against the installed `gridsync` wheel, nothing else.

scripts/test installs target/packages/gridsync-*.whl into the venv target/pyenv and runs
pytest with that interpreter. A `gridsync_ffi` found anywhere else (a PYTHONPATH into
target/bindings, a stale copy beside the tests) would test files an app never gets, so
the run stops before collecting a test.
"""

import pathlib
import sysconfig

import pytest

import gridsync_ffi

_package = pathlib.Path(gridsync_ffi.__file__).resolve().parent
_site = {pathlib.Path(sysconfig.get_path(k)).resolve() for k in ("purelib", "platlib")}
if _package.name != "gridsync_ffi" or _package.parent not in _site:
    pytest.exit(
        f"gridsync_ffi was imported from {gridsync_ffi.__file__}, not from this "
        f"interpreter's site-packages ({', '.join(sorted(map(str, _site)))}): run "
        "scripts/package, install target/packages/gridsync-*.whl into a venv and run "
        "pytest with that venv's python, without PYTHONPATH",
        returncode=4,
    )
