"""One registry shape for every pluggable part: detectors, classifiers, editors, distortions, steps.

An entry registers itself where it is defined (timm's ``@register_model`` / IMDL-BenCo's
``register_module`` style)::

    from diffseg30k.models.registry import DETECTORS, DetectorSpec
    DETECTORS.register(DetectorSpec("mynet-tiny", ...))          # an object with a ``name``

    from diffseg30k.generation.editors.registry import EDITORS
    @EDITORS.register("myeditor")                                # a class or function
    class MyEditor(Editor): ...

A registry knows the package its entries live in and imports every module of it on the first
lookup, so a new entry is one new module: no import list to keep, and a fresh process (a worker,
``accelerate launch``) finds every entry. An unknown name raises :class:`RegistryError` -- a
``KeyError`` *and* a ``ValueError``, so existing ``except`` clauses keep working -- that suggests
the nearest registered names.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "RegistryError", "first_sentence", "suggest"]


def suggest(name: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """The registered names closest to ``name`` (difflib ratio >= 0.6, near the best), best first."""
    lowered = {c.lower(): c for c in choices}
    scored = sorted(
        ((difflib.SequenceMatcher(None, name.lower(), c).ratio(), c) for c in lowered),
        key=lambda pair: -pair[0],
    )
    best = scored[0][0] if scored else 0.0
    return [lowered[c] for ratio, c in scored[:limit] if ratio >= 0.6 and ratio >= best - 0.05]


def first_sentence(text: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line (listing descriptions)."""
    paragraph = " ".join(str(text).strip().split("\n\n")[0].split())
    end = re.search(r"(?<!Tab)(?<!Fig)(?<!e\.g)(?<!i\.e)\.\s", paragraph)
    return paragraph if end is None else paragraph[: end.start() + 1]


class RegistryError(KeyError, ValueError):
    """An unknown registry name; the message suggests near names and lists the registered ones."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = "",
                 suggestions: list[str] | None = None) -> None:
        choices = list(choices)
        self.kind, self.name, self.choices = kind, name, choices
        self.suggestions = suggest(str(name), choices) if suggestions is None else suggestions
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += f"; did you mean {' or '.join(self.suggestions)}?"
        message += f" (available: {', '.join(choices) or 'none'}{'; ' + hint if hint else ''})"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Named entries of one kind, in registration order; ``package`` modules are imported lazily."""

    def __init__(
        self,
        kind: str,
        package: str | tuple[str, ...] | None = None,
        *,
        describe: Callable[[T], str] | None = None,
        key: Callable[[T], str] | None = None,
        sort_key: Callable[[str, T], Any] | None = None,
    ) -> None:
        """``package``: the module (or tuple of modules; a package means all its public modules)
        imported on the first lookup -- the one list of where entries are defined.
        ``describe(entry)`` is its listing line; ``key(entry)`` its default name;
        ``sort_key(name, entry)`` orders the listing (default: as registered)."""
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._loaded = package is None
        self._describe = describe
        self._key = key
        self._sort_key = sort_key
        #: Entry modules not imported, and why (an optional dependency missing).
        self.skipped: dict[str, str] = {}

    # ----------------------------------------------------------------------------- registering
    def register(self, entry: Any = None, *, name: str | None = None, replace: bool = False) -> Any:
        """Register ``entry`` (named by ``name``, its ``name`` attribute or ``__name__``) and return it.

        ``register("key")`` or ``register(name="key")`` returns a decorator instead.
        """
        if entry is None or isinstance(entry, str):
            key = name if entry is None else entry
            return lambda obj: self.register(obj, name=key, replace=replace)
        key = (
            name
            or (self._key(entry) if self._key else None)
            or getattr(entry, "name", None)
            or getattr(entry, "__name__", None)
        )
        if not isinstance(key, str) or not key:
            raise ValueError(f"{self.kind} registry: cannot tell the name of {entry!r}; pass name=")
        previous = self._entries.get(key)
        if previous is not None and not replace and not _same_definition(previous, entry):
            raise ValueError(
                f"{self.kind} {key!r} is registered twice ({_origin(previous)} and "
                f"{_origin(entry)}); pick another name"
            )
        self._entries[key] = entry
        return entry

    def unregister(self, name: str) -> T:
        """Remove and return an entry (tests and plugins that register temporarily)."""
        self._load()
        if name not in self._entries:
            raise self.error(name)
        return self._entries.pop(name)

    # ----------------------------------------------------------------------------- looking up
    def get(self, name: str) -> T:
        """The entry registered as ``name``; :class:`RegistryError` with suggestions otherwise."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(name) from None

    __getitem__ = get

    def error(self, name: str, hint: str = "") -> RegistryError:
        """The error for an unknown ``name`` (for lookups that parse names, e.g. ``jpeg60``)."""
        self._load()
        return RegistryError(self.kind, name, self.names(), hint)

    def names(self) -> list[str]:
        """Every registered name, in listing order."""
        self._load()
        names = list(self._entries)
        if self._sort_key is None:
            return names
        return sorted(names, key=lambda name: self._sort_key(name, self._entries[name]))

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name]) for name in self.names()]

    def values(self) -> list[T]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def describe(self, name: str) -> str:
        """One line about an entry: ``describe(entry)``, its ``description`` or its docstring."""
        entry = self.get(name)
        if self._describe is not None:
            return self._describe(entry)
        return first_sentence(getattr(entry, "description", None) or getattr(entry, "__doc__", None) or "")

    def listing(self) -> str:
        """``name  description`` lines: what ``diffseg30k list`` prints."""
        names = self.names()
        width = max((len(n) for n in names), default=0) + 2
        return "\n".join(f"{n:<{width}}{self.describe(n)}".rstrip() for n in names)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    # ----------------------------------------------------------------------------- loading
    def _load(self) -> None:
        """Import the entry modules once (each registers the entries it defines)."""
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules look the registry up while loading
        try:
            for module_name in (self.package,) if isinstance(self.package, str) else self.package:
                module = importlib.import_module(module_name)
                subs = sorted(pkgutil.iter_modules(getattr(module, "__path__", [])), key=lambda m: m.name)
                for sub in subs:  # a package: every public module of it
                    if not sub.name.startswith("_"):
                        self._import_entry_module(f"{module_name}.{sub.name}")
        except BaseException:
            self._loaded = False  # a broken entry module fails every lookup, not just the first
            raise

    def _import_entry_module(self, name: str) -> None:
        """Import one module of the package; one needing an optional library that is not installed
        is skipped with a warning (its entries are simply absent), any other error propagates."""
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or err.name.split(".")[0] == "diffseg30k":
                raise
            self.skipped[name] = f"needs {err.name}"
            warnings.warn(f"{self.kind} registry: skipped {name} (optional dependency {err.name!r} "
                          "is not installed)", stacklevel=3)


def _origin(entry: Any) -> str:
    return getattr(entry, "__module__", None) or type(entry).__module__


def _same_definition(a: Any, b: Any) -> bool:
    """The same entry again, or a re-import of its module (``importlib.reload``) defining it anew."""
    if a is b:
        return True
    qualname = getattr(a, "__qualname__", None)
    return qualname is not None and (a.__module__, qualname) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )
