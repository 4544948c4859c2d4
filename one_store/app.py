"""Load an app folder (like Convex's ``convex/``): its schema and every function.

An app is a folder: ``schema.py`` holds ``schema = define_schema(...)``; every other
``.py`` file holds functions, addressed ``"file:name"`` (``"dir/file:name"`` in a
subfolder), where ``name`` is the decorator's ``name=`` or the Python name;
``http.py`` may hold ``http = HttpRouter()``, ``crons.py`` ``crons = Crons()`` and
``auth_config.py`` ``providers = [...]`` (Convex's ``auth.config.ts``, see
:mod:`one_store.runtime.auth`).

Each load imports the folder as a fresh, uniquely named package
(``one_store_apps.app<N>``), so loading the same folder twice, or two apps in one
process, never collide in ``sys.modules``; files of an app may import each other
with relative imports (``from .schema import schema``).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from attrs import frozen

from .model.errors import DefinitionError
from .model.schema import Schema
from .runtime.auth import Provider, parse_providers
from .runtime.functions import FunctionSpec

_counter = itertools.count(1)
ROOT_PACKAGE = "one_store_apps"
SKIP_DIRS = {"_generated", "__pycache__", "node_modules"}
BUNDLED_APPS = ("one", "chat")
_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_app(name: Literal["one", "chat"]) -> Path:
    """The folder of an app that ships with one_store, wherever it is installed.

    ``"one"`` is the ONE agent/human system and ``"chat"`` the agent chat app,
    the two systems one_store was built from (``one-store demo`` runs both). In
    a checkout they are ``schema/one`` and ``schema/chat``; a wheel carries them
    as ``one_store/_apps/``. Use the path as ``app=`` from any directory.

    Example:
        >>> from one_store import Store, bundled_app
        >>> with Store.memory(app=bundled_app("chat")) as store:
        ...     "messages:list" in store.app.functions
        True

    Raises:
        ValueError: ``name`` is not one of the bundled apps.
        FileNotFoundError: this installation carries no copy of the app.
    """
    if name not in BUNDLED_APPS:
        raise ValueError(
            f"no bundled app {name!r}; the bundled apps are {', '.join(BUNDLED_APPS)}"
        )
    # The checkout's schema/ (editable install), else the copy a wheel ships in
    # one_store/_apps (pyproject's force-include).
    for folder in (
        _PACKAGE_DIR.parent / "schema" / name,
        _PACKAGE_DIR / "_apps" / name,
    ):
        if (folder / "schema.py").is_file():
            return folder
    raise FileNotFoundError(
        f"this one_store installation has no copy of the {name!r} app "
        f"(looked for {_PACKAGE_DIR.parent / 'schema' / name} and "
        f"{_PACKAGE_DIR / '_apps' / name})"
    )


@frozen
class App:
    """A loaded app: schema, functions by path, the optional router, crons and auth providers."""

    schema: Schema | None
    functions: Mapping[str, FunctionSpec[Any]]
    http: Any
    crons: Any
    root: Path
    auth_providers: tuple[Provider, ...] = ()

    def paths(self, kind: str | None = None) -> list[str]:
        """Sorted function paths, optionally only those of one kind."""
        return sorted(p for p, f in self.functions.items() if kind in (None, f.kind))


def _folder_of(ref: str | os.PathLike[str]) -> Path:
    path = Path(ref)
    if path.is_dir():
        return path.resolve()
    if isinstance(ref, str) and "/" not in ref and not ref.endswith(".py"):
        try:
            module = importlib.import_module(ref)
        except ImportError as e:
            raise DefinitionError(
                f"App {ref!r} is neither a folder nor an importable module: {e}"
            ) from None
        locations = list(getattr(module, "__path__", []))
        if locations:
            return Path(locations[0]).resolve()
        raise DefinitionError(f"App module {ref!r} is not a package (no folder)")
    raise DefinitionError(f"App folder {str(ref)!r} does not exist")


def _package(name: str, folder: Path) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    package.__package__ = name
    sys.modules[name] = package
    return package


def _import_file(package: str, folder: Path, file: Path) -> types.ModuleType:
    relative = file.relative_to(folder).with_suffix("")
    parent = package
    for part in relative.parts[:-1]:  # subfolders become subpackages
        child = f"{parent}.{part}"
        if child not in sys.modules:
            _package(child, folder.joinpath(*child.split(".")[2:]))
        parent = child
    name = f"{parent}.{relative.parts[-1]}"
    if name in sys.modules:  # imported already by a sibling's relative import
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"Cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def load_app(ref: str | os.PathLike[str]) -> App:
    """Load an app folder (path) or package (dotted module name).

    Example:
        >>> app = load_app("schema/chat")      # doctest: +SKIP
        >>> app.functions["messages:list"].kind  # doctest: +SKIP
        'query'

    Raises:
        DefinitionError: the folder does not exist, a function path is defined
            twice, or ``schema.py`` has no ``schema``.
    """
    folder = _folder_of(ref)
    if ROOT_PACKAGE not in sys.modules:
        _package(ROOT_PACKAGE, folder)
    package = f"{ROOT_PACKAGE}.app{next(_counter)}"
    _package(package, folder)
    schema: Schema | None = None
    http: Any = None
    crons: Any = None
    providers: tuple[Provider, ...] = ()
    functions: dict[str, FunctionSpec[Any]] = {}
    files = sorted(
        p
        for p in folder.rglob("*.py")
        if not (set(p.relative_to(folder).parts[:-1]) & SKIP_DIRS)
        and not p.name.startswith(("_", "."))
    )
    for file in files:
        module = _import_file(package, folder, file)
        rel = file.relative_to(folder).with_suffix("").as_posix()
        if rel == "schema":
            found = getattr(module, "schema", None)
            if not isinstance(found, Schema):
                raise DefinitionError(
                    f"{file} must define `schema = define_schema(...)`"
                )
            schema = found
            continue
        if rel == "http":
            http = getattr(module, "http", None)
        if rel == "crons":
            crons = getattr(module, "crons", None)
        if rel == "auth_config":
            providers = parse_providers(getattr(module, "providers", []), str(file))
        for attr, value in vars(module).items():
            if not isinstance(value, FunctionSpec) or value.kind == "http_action":
                continue
            if getattr(value.handler, "__module__", module.__name__) != module.__name__:
                continue  # imported from another file: registered there
            path = f"{rel}:{value.name or attr}"
            if path in functions and functions[path] is not value:
                raise DefinitionError(
                    f"Function path {path!r} is defined twice in {file}"
                )
            functions[path] = value
    return App(schema, functions, http, crons, folder, providers)
