"""Wheel build hook: the generated module and the native library, tagged for this platform.

The package is `gridsync_ffi` (what apps import): the module UniFFI generated becomes
its `__init__.py`, unchanged, and the library sits beside it, where the module loads it
from (`os.path.dirname(__file__)`). Because the wheel carries a compiled library it is
tagged `py3-none-<platform>` (for example `py3-none-linux_x86_64`), never `any`: pip
then refuses it on another platform instead of failing at import time. The module
reaches the library through ctypes, so one wheel serves every Python 3 version.
"""

import os
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def library_name() -> str:
    if sys.platform == "darwin":
        return "libgridsync_ffi.dylib"
    if sys.platform.startswith("win"):
        return "gridsync_ffi.dll"
    return "libgridsync_ffi.so"


def platform_tag() -> str:
    # The same spelling as bdist_wheel's: linux-x86_64 -> linux_x86_64,
    # macosx-11.0-arm64 -> macosx_11_0_arm64.
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


class GridsyncBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        generated = Path(self.root).resolve().parents[1] / "target" / "bindings" / "python"
        # scripts/package points these at its own copies (the library stripped of
        # debug information); the defaults are what scripts/bindings leaves.
        module = Path(os.environ.get("GRIDSYNC_FFI_MODULE", generated / "gridsync_ffi.py"))
        library = Path(os.environ.get("GRIDSYNC_FFI_LIBRARY", generated / library_name()))
        for path in (module, library):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: run scripts/package first")
        build_data["force_include"][str(module)] = "gridsync_ffi/__init__.py"
        build_data["force_include"][str(library)] = f"gridsync_ffi/{library_name()}"
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{platform_tag()}"
