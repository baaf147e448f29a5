"""A pytest plugin for `nox -s mutate` only ([tool.mutmut] pytest_add_cli_args): the tests
import `meshready`, while mutmut names every mutant after its file's path in its copy of
the tree, `tools.meshready.<module>`. mutmut knows the `./`, `src/` and `source/` layouts,
not `tools/`: without this plugin the tests import the editable install (the unmutated
source), no test covers any mutant, and the run stops with "could not find any test case".

Here `meshready.X` is made the very module object `tools.meshready.X`, imported from
mutmut's copy (mutants/ is first on sys.path): one module per file, named as mutmut names
its mutants, so both the coverage stats and the active mutant match. The apps' tests
import their script as `loadgen` (from its directory) and `hello_server` (by file, through
`hello_process.load_server_module`, which takes the module already in `sys.modules`):
those become `apps.loadgen.loadgen` and `apps.hello.server`. A server or load generator
that a test starts as a process runs the repository's own file (`ASM_READY_APPS_DIR`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# The name the tests import -> the name mutmut gives the file in its copy.
ALIASES = {
    "meshready": "tools.meshready",
    "loadgen": "apps.loadgen.loadgen",
    "hello_server": "apps.hello.server",
}


class _Existing(importlib.abc.Loader):
    """Hands the import system a module that is already loaded, without running it again."""

    def __init__(self, module: ModuleType):
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        return None


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top, dot, rest = fullname.partition(".")
        if top not in ALIASES:
            return None
        module = importlib.import_module(ALIASES[top] + dot + rest)
        return importlib.util.spec_from_loader(
            fullname, _Existing(module), is_package=hasattr(module, "__path__")
        )


def _install() -> None:
    imported = [name for name in sys.modules if name.partition(".")[0] in ALIASES]
    if imported:
        raise RuntimeError(
            f"{imported[0]} was imported before {__name__}: mutants cannot be matched"
        )
    sys.meta_path.insert(0, _AliasFinder())
    for name in ALIASES.values():
        origin = Path(importlib.import_module(name).__file__ or "").resolve()
        if "mutants" not in origin.parts:
            raise RuntimeError(f"{name} resolves to {origin}, not to mutmut's mutants/ copy")
    # load_server_module loads its file directly unless the module is there already.
    sys.modules["hello_server"] = sys.modules[ALIASES["hello_server"]]
    # Programs the tests start as processes run from the repository, not from mutants/:
    # this file is mutants/tools/mutmut_alias.py (apps/hello/tests/hello_process.py).
    os.environ["ASM_READY_APPS_DIR"] = str(Path(__file__).resolve().parents[2] / "apps")


_install()
