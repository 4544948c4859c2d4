"""Notebook and DataFrame views of a store: ``store.table(name)``, ``to_arrow`` and friends.

Documents become columns in one place, :func:`to_arrow`; :func:`to_pandas` and
:func:`to_polars` convert its Arrow table (one conversion path, so the three
agree). The columns:

- ``_id`` (string) and ``_creationTime`` (a UTC timestamp in milliseconds: the
  fraction of a millisecond one_store adds to keep creation times unique is
  dropped; the exact value stays in the documents);
- one column per top-level field, in the order the table's validator declares
  them, then any other field found in the documents, in the order first seen;
- ``v.string()``/``v.id()`` string, ``v.number()`` float64, ``v.int64()`` int64
  (pandas' nullable ``Int64`` where the column can hold null), ``v.boolean()``
  bool, ``v.bytes()`` binary, ``v.null()`` null, a literal its value's type;
- ``v.object`` a struct and ``v.array`` a list, typed all the way down; a union
  whose members share one type has that type (``v.nullable(x)`` is ``x``, a union
  of string literals is a string, a union of objects a struct of all their
  fields); what has no single Arrow type (``v.any()``, ``v.record``, other
  unions) is JSON text, as one_store stores it;
- a missing field is null.

The types come from the validator, so an empty table still has typed columns.
Without one (a table with no schema, or a list of query results), each column's
type is read off its values: one Python type gives its Arrow type, and anything
else (objects, arrays, mixed values) is JSON text. A value that does not fit its
column's type (documents written with ``schema_validation=False``) turns that
column into JSON text rather than failing.

pyarrow, pandas and polars are the optional extra ``one-store[data]``: they are
imported when a conversion runs, never by ``import one_store``, and a missing one
raises ``ModuleNotFoundError`` naming the extra.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from returns.result import Success

from .engine.backend import IndexScan
from .model.display import columns_of, html_table, result_html, text_table
from .model.errors import ContextError, StorageFailure
from .model.schema import Schema
from .model.validator_json import validator_from_json
from .model.validators import Validator
from .model.values import Document, dumps, loads

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

    from .runtime.executor import Executor

EXTRA = "one-store[data]"
SHOWN_ROWS = 10
"""Rows a table view shows in a notebook or a terminal (with the total count)."""
BATCH = 1000
"""Documents read per snapshot while iterating over a table view."""

Convert = Callable[[Any], Any]


def need(module: str) -> Any:
    """Import ``module`` (pyarrow, pandas, polars) or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"{module} is not installed; one_store's DataFrame conversions need the "
            f"'data' extra: pip install '{EXTRA}'",
            name=module,
        ) from e


# --------------------------------------------------------------------------- plans


class _Plan:
    """How one column (or a part of one) becomes Arrow: its type and a converter.

    ``convert`` is None when the values go in as they are (the fast path);
    ``json`` marks a column of JSON text.
    """

    __slots__ = ("convert", "json", "nullable", "type")

    def __init__(
        self, type_: Any, convert: Convert | None = None, *, json: bool = False
    ) -> None:
        self.type = type_
        self.convert = convert
        self.json = json
        self.nullable = False


def _json_text(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _json_plan(pa: Any) -> _Plan:
    return _Plan(pa.string(), _json_text, json=True)


def _leaf(pa: Any, kind: str) -> Any:
    return {
        "string": pa.string(),
        "id": pa.string(),
        "number": pa.float64(),
        "int64": pa.int64(),
        "boolean": pa.bool_(),
        "bytes": pa.binary(),
        "null": pa.null(),
    }.get(kind)


def plan_of(pa: Any, validator: Validator) -> _Plan:
    """The Arrow plan of a value ``validator`` accepts (see the module's rules)."""
    kind = validator.kind
    leaf = _leaf(pa, kind)
    if leaf is not None:
        return _Plan(leaf)
    if kind == "literal":
        literal = validator.literal
        return _Plan(
            pa.bool_()
            if isinstance(literal, bool)
            else pa.int64()
            if isinstance(literal, int)
            else pa.float64()
            if isinstance(literal, float)
            else pa.string()
        )
    if kind == "array" and validator.element is not None:
        return _list_plan(pa, plan_of(pa, validator.element))
    if kind == "object" and validator.fields:
        return _struct_plan(pa, [(n, f, f.is_optional) for n, f in validator.fields])
    if kind == "union":
        return _union_plan(pa, validator.members)
    return _json_plan(pa)  # any, record, an empty object


def _list_plan(pa: Any, element: _Plan) -> _Plan:
    convert = element.convert
    if convert is None:
        return _Plan(pa.list_(element.type))

    def each(value: Any) -> Any:
        return None if value is None else [convert(x) for x in value]

    return _Plan(pa.list_(element.type), each)


def _struct_plan(pa: Any, fields: list[tuple[str, Validator, bool]]) -> _Plan:
    plans = []
    for name, validator, optional in fields:
        plan = plan_of(pa, validator)
        plan.nullable = plan.nullable or optional
        plans.append((name, plan))
    arrow = pa.struct([pa.field(n, p.type) for n, p in plans])
    converting = [(n, p.convert) for n, p in plans if p.convert is not None]
    if not converting:
        return _Plan(arrow)

    def each(value: Any) -> Any:
        if value is None:
            return None
        out = dict(value)
        for name, convert in converting:
            if name in out:
                out[name] = convert(out[name])
        return out

    return _Plan(arrow, each)


def _union_plan(pa: Any, members: tuple[Validator, ...]) -> _Plan:
    present = [m for m in members if m.kind != "null"]
    if not present:
        return _Plan(pa.null())
    nullable = len(present) < len(members)
    if all(m.kind == "object" and m.fields for m in present):
        plan = _merged_objects(pa, present)
    elif all(m.kind == "array" and m.element is not None for m in present):
        elements = tuple(m.element for m in present if m.element is not None)
        plan = _list_plan(pa, _union_plan(pa, elements))
    else:
        plans = [plan_of(pa, m) for m in present]
        first = plans[0]
        same = all(
            p.type == first.type and not p.json and p.convert is None for p in plans
        )
        plan = first if same else _json_plan(pa)
    plan.nullable = plan.nullable or nullable
    return plan


def _merged_objects(pa: Any, objects: list[Validator]) -> _Plan:
    """One struct with every field of every object; a field's members merged."""
    found: dict[str, list[Validator]] = {}
    for obj in objects:
        for name, field in obj.fields:
            found.setdefault(name, []).append(field)
    fields: list[tuple[str, Validator, bool]] = []
    for name, validators in found.items():
        merged = (
            validators[0]
            if len(validators) == 1
            else Validator("union", members=tuple(validators))
        )
        # Optional in the struct when some member lacks it or makes it optional.
        optional = len(validators) < len(objects) or any(
            f.is_optional for f in validators
        )
        fields.append((name, merged, optional))
    return _struct_plan(pa, fields)


def _inferred(pa: Any, values: list[Any]) -> _Plan:
    """The plan of a column without a validator: one Python type, or JSON text."""
    kinds = {type(x) for x in values if x is not None}
    plan = (
        _Plan(pa.null())
        if not kinds
        else _Plan(_PY_TYPES[kinds.pop()](pa))
        if len(kinds) == 1 and next(iter(kinds)) in _PY_TYPES
        else _json_plan(pa)
    )
    plan.nullable = True
    return plan


_PY_TYPES: dict[type, Callable[[Any], Any]] = {
    str: lambda pa: pa.string(),
    bool: lambda pa: pa.bool_(),
    int: lambda pa: pa.int64(),
    float: lambda pa: pa.float64(),
    bytes: lambda pa: pa.binary(),
}


# --------------------------------------------------------------------------- tables


def to_arrow(
    docs: Iterable[Mapping[str, Any]], *, validator: Validator | None = None
) -> pyarrow.Table:
    """Turn documents (or any list of objects) into a ``pyarrow.Table``.

    Args:
        docs: documents, query results: each a dict.
        validator: the documents' object validator (a table's
            ``schema.tables[name].document``), which types the columns even when
            ``docs`` is empty; without it the types are read off the values.

    Raises:
        TypeError: an item of ``docs`` is not a dict (the message says which).
        ModuleNotFoundError: pyarrow is missing (install ``one-store[data]``).

    Example:
        >>> to_arrow([{"_id": "x", "n": 1}]).column_names  # doctest: +SKIP
        ['_id', 'n']
    """
    pa = need("pyarrow")
    rows = _rows(docs)
    declared = _declared(validator)
    documents = validator is not None
    names = columns_of(rows, [n for n, _ in declared], documents=documents)
    plans = {n: _system_plan(pa, n) for n in names if n in ("_id", "_creationTime")}
    for name, field in declared:
        plan = plan_of(pa, field)
        plan.nullable = plan.nullable or field.is_optional
        plans[name] = plan
    arrays, fields = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        plan = plans.get(name) or _inferred(pa, values)
        array = _array(pa, name, values, plan)
        arrays.append(array)
        nullable = plan.nullable or array.null_count > 0 or array.type == pa.null()
        fields.append(pa.field(name, array.type, nullable=nullable))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _rows(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = docs if isinstance(docs, list) else list(docs)
    for i, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):  # dict: fast
            raise TypeError(
                f"one_store's DataFrame conversions take a list of documents "
                f"(dicts); item {i} is {type(row).__name__}: {row!r:.60}"
            )
    return rows


def _declared(validator: Validator | None) -> list[tuple[str, Validator]]:
    if validator is None or validator.kind != "object":
        return []
    return [(n, f) for n, f in validator.fields if n not in ("_id", "_creationTime")]


def _system_plan(pa: Any, name: str) -> _Plan:
    if name == "_id":
        return _Plan(pa.string())
    return _Plan(pa.timestamp("ms", tz="UTC"), json=False)


def _array(pa: Any, name: str, values: list[Any], plan: _Plan) -> Any:
    if name == "_creationTime" and plan.type == pa.timestamp("ms", tz="UTC"):
        return _times(pa, values)
    if plan.convert is not None:
        values = [plan.convert(x) for x in values]
    try:
        return pa.array(values, type=plan.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        # A value of another type (written without schema validation): the
        # column keeps every value, as JSON text.
        return pa.array([_json_text(x) for x in values], type=pa.string())


def _times(pa: Any, values: list[Any]) -> Any:
    """Milliseconds since the epoch (floats) as a UTC millisecond timestamp column."""
    if all(isinstance(x, float | int) and not isinstance(x, bool) for x in values):
        floats = pa.array(values, type=pa.float64())
        whole = need("pyarrow.compute").floor(floats).cast(pa.int64())
        return whole.cast(pa.timestamp("ms", tz="UTC"))
    return pa.array([_json_text(x) for x in values], type=pa.string())


def to_pandas(
    docs: Iterable[Mapping[str, Any]], *, validator: Validator | None = None
) -> pandas.DataFrame:
    """Documents as a ``pandas.DataFrame``, through :func:`to_arrow`.

    An int64 column that can hold null (an optional field, or nulls present)
    is pandas' nullable ``Int64``; other int64 columns stay ``int64``.
    """
    need("pandas")  # before any work: a missing extra is named at once
    return arrow_to_pandas(to_arrow(docs, validator=validator))


def arrow_to_pandas(table: pyarrow.Table) -> pandas.DataFrame:
    """The pandas view of an Arrow table made by :func:`to_arrow`."""
    pd = need("pandas")
    pa = need("pyarrow")
    frame = table.to_pandas()
    for field in table.schema:
        if field.type == pa.int64() and field.nullable:
            frame[field.name] = pd.array(
                table.column(field.name).to_pylist(), dtype=pd.Int64Dtype()
            )
    return frame


def to_polars(
    docs: Iterable[Mapping[str, Any]], *, validator: Validator | None = None
) -> polars.DataFrame:
    """Documents as a ``polars.DataFrame``, through :func:`to_arrow`."""
    need("polars")
    return arrow_to_polars(to_arrow(docs, validator=validator))


def arrow_to_polars(table: pyarrow.Table) -> polars.DataFrame:
    """The polars view of an Arrow table made by :func:`to_arrow`."""
    pl = need("polars")
    frame: polars.DataFrame = pl.from_arrow(table)  # a Table gives a DataFrame
    return frame


# --------------------------------------------------------------------------- views


class TableView:
    """A live, read-only view of one table: ``store.table(name)``.

    Every use reads the table as it is now: ``len(view)`` counts, iteration goes
    through the documents in ``_creationTime`` order (:data:`BATCH` at a time,
    each batch one snapshot, so a long loop never holds writers back), and
    :meth:`head`, :meth:`to_arrow`, :meth:`to_pandas` and :meth:`to_polars` each
    read one snapshot. In a notebook it shows its first rows and its count.

    Example:
        >>> from one_store import Store, define_schema, define_table, v
        >>> store = Store.memory(define_schema({"notes": define_table({"text": v.string()})}))
        >>> _ = store.run(lambda ctx: ctx.db.insert("notes", {"text": "hi"}))
        >>> notes = store.table("notes")
        >>> len(notes), [d["text"] for d in notes]
        (1, ['hi'])
    """

    def __init__(self, executor: Executor, schema: Schema | None, name: str) -> None:
        self._executor = executor
        self.name = name
        definition = schema.tables.get(name) if schema is not None else None
        self.validator: Validator | None = (
            definition.document if definition is not None else self._recorded()
        )
        if definition is None and name not in self._tables():
            known = ", ".join(self._tables()) or "none"
            raise ContextError(
                f"No table {name!r} in this store (tables: {known}). A table "
                "exists once the schema declares it or a document is inserted."
            )

    def _tables(self) -> list[str]:
        backend = self._backend()
        with backend.read():
            return list(backend.layouts)

    def _recorded(self) -> Validator | None:
        """The validator the file records for this table (a store without a schema)."""
        backend = self._backend()
        with backend.read():
            text = backend.checked_documents().get(self.name)
        try:
            return None if text is None else validator_from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AssertionError):
            return None  # a record this version cannot read: types from the values

    def _backend(self) -> Any:
        if self._executor.closed:
            raise ContextError("This store is closed.")
        return self._executor.backend

    def __len__(self) -> int:
        backend = self._backend()
        with backend.read():
            return int(backend.count(self.name))

    def __iter__(self) -> Iterator[Document]:
        low = b""
        while True:
            batch = self._batch(low)
            for body, _key in batch:
                yield loads(body)
            if len(batch) < BATCH:
                return
            # The next key after the last one read (keys are prefix-free).
            low = batch[-1][1] + b"\x00"

    def _batch(self, low: bytes) -> list[tuple[str, bytes]]:
        backend = self._backend()
        with backend.read():
            if self.name not in backend.layouts:
                return []
            scan = IndexScan(self.name, "by_creation_time", low, None, "asc", BATCH)
            rows = backend.index_rows(scan)
            try:
                return [(body, key) for body, key in rows]
            finally:
                rows.close()

    def head(self, n: int = 10) -> list[Document]:
        """The first ``n`` documents in ``_creationTime`` order (one snapshot)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"head(n) takes a whole number >= 0, got {n!r}")
        backend = self._backend()
        with backend.read():
            return list(itertools.islice(backend.scan(self.name), n))

    def documents(self) -> list[Document]:
        """Every document, in ``_creationTime`` order, read at one snapshot."""
        backend = self._backend()
        with backend.read():
            return list(backend.scan(self.name))

    def to_arrow(self) -> pyarrow.Table:
        """The table as a ``pyarrow.Table`` typed by its validator (see the module)."""
        return to_arrow(self.documents(), validator=self._typing())

    def to_pandas(self) -> pandas.DataFrame:
        """The table as a ``pandas.DataFrame`` (through :meth:`to_arrow`)."""
        return arrow_to_pandas(self.to_arrow())

    def to_polars(self) -> polars.DataFrame:
        """The table as a ``polars.DataFrame`` (through :meth:`to_arrow`)."""
        return arrow_to_polars(self.to_arrow())

    def _typing(self) -> Validator:
        # A table without a validator still has its system columns.
        from .model.validators import v

        return self.validator if self.validator is not None else v.object({})

    def _shown(self) -> tuple[list[str], list[Document], str]:
        backend = self._backend()
        with backend.read():
            rows = list(itertools.islice(backend.scan(self.name), SHOWN_ROWS))
            total = int(backend.count(self.name))
        declared = [n for n, _ in _declared(self.validator)]
        columns = columns_of(rows, declared, documents=True)
        shown = f"first {len(rows)} of " if len(rows) < total else ""
        caption = f"{self.name}: {shown}{total} document{'s' * (total != 1)}"
        return columns, rows, caption

    def _repr_html_(self) -> str:
        return html_table(*self._shown())

    def __repr__(self) -> str:
        if self._executor.closed:
            return f"<TableView {self.name!r} of a closed store>"
        return text_table(*self._shown())


def store_summary(
    executor: Executor, path: str
) -> tuple[list[str], list[Document], str]:
    """What a store shows of itself: each table with its document count."""
    if executor.closed:
        return [], [], f"Store {path!r} (closed)"
    backend = executor.backend
    try:
        with backend.read():
            rows = [
                {"table": name, "documents": int(backend.count(name))}
                for name in backend.tables()
            ]
    except StorageFailure as e:  # a repr must not raise: say why instead
        return [], [], f"Store {path!r} (cannot be read: {e.problem})"
    mode = " (read-only)" if getattr(backend, "readonly", False) else ""
    return ["table", "documents"], rows, f"Store {path!r}{mode}"


PAGE_KEYS = frozenset({"page", "isDone", "continueCursor"})


def page_html(value: object) -> str | None:
    """A ``paginate`` page as HTML: its first rows, then where it ends (else None)."""
    if not (
        isinstance(value, dict)
        and value.keys() >= PAGE_KEYS
        and isinstance(value["page"], list)
        and all(isinstance(d, dict) for d in value["page"])
    ):
        return None
    page = value["page"]
    rows = page[:SHOWN_ROWS]
    shown = f"first {len(rows)} of " if len(rows) < len(page) else ""
    end = "the last page" if value["isDone"] else "more after it"
    caption = (
        f"page: {shown}{len(page)} document{'s' * (len(page) != 1)}, {end}; "
        f"continueCursor {value['continueCursor']}"
    )
    return html_table(columns_of(rows), rows, caption)


def success_html(result: object) -> str | None:
    """A ``Success`` for a notebook: its documents as a table, else its value."""
    return result_html(result, "Success")


def show_results_in_notebooks() -> None:
    """In a running IPython (Jupyter), show pages and call results as tables.

    A ``paginate`` page is a plain dict (Convex's shape, what a query returns)
    and a call's ``Success`` is returns' class: neither can carry a
    ``_repr_html_`` of one_store's, so IPython's HTML formatter is given
    :func:`page_html` for ``dict`` (it declines every other dict, which
    displays as before) and :func:`success_html` for ``Success``. Nothing
    happens outside IPython, or for a type that already has a formatter.
    IPython is never imported here.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    for kind, show in ((dict, page_html), (Success, success_html)):
        try:
            formatter.lookup_by_type(kind)
        except KeyError:
            formatter.for_type(kind, show)
