"""A pytest plugin for `nox -s mutate` only ([tool.mutmut] pytest_add_cli_args): the tests
import `meshready`, while mutmut names every mutant after its file's path in its copy of
the tree, `tools.meshready.<module>`. mutmut knows the `./`, `src/` and `source/` layouts,
not `tools/`: without this plugin the tests import the editable install (the unmutated
source), no test covers any mutant, and the run stops with "could not find any test case".

Here `meshready.X` is made the very module object `tools.meshready.X`, imported from
mutmut's copy (mutants/ is first on sys.path): one module per file, named as mutmut names
its mutants, so both the coverage stats and the active mutant match.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "meshready"
PREFIX = "tools."


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
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        module = importlib.import_module(PREFIX + fullname)
        return importlib.util.spec_from_loader(
            fullname, _Existing(module), is_package=hasattr(module, "__path__")
        )


def _install() -> None:
    if any(name == PACKAGE or name.startswith(PACKAGE + ".") for name in sys.modules):
        raise RuntimeError(f"{PACKAGE} was imported before {__name__}: mutants cannot be matched")
    sys.meta_path.insert(0, _AliasFinder())
    origin = Path(importlib.import_module(PREFIX + PACKAGE).__file__ or "").resolve()
    if "mutants" not in origin.parts:
        raise RuntimeError(f"{PREFIX}{PACKAGE} resolves to {origin}, not to mutmut's mutants/ copy")


_install()
