"""Every op module has a table in tests/ops, and every exported op has rows in it."""

import importlib
import pkgutil
from collections import Counter

import graphnet.ops

MODULES = [m.name for m in pkgutil.iter_modules(graphnet.ops.__path__) if m.name[0] != "_"]


def _tables() -> dict:
    tables = {}
    for name in MODULES:
        try:
            tables[name] = importlib.import_module(f".test_{name}", __package__)
        except ModuleNotFoundError:
            pass
    return tables


def test_every_op_module_has_a_table():
    missing = [f"tests/ops/test_{name}.py" for name in MODULES if name not in _tables()]
    assert not missing, f"graphnet/ops modules without a table: {missing}"


def test_every_exported_op_is_in_a_table():
    covered = {case.op for table in _tables().values() for case in table.CASES}
    missing = sorted(set(graphnet.ops.__all__) - covered)
    assert not missing, f"exported ops without a row in the tests/ops tables: {missing}"


def test_rows_name_exported_ops_and_have_unique_ids():
    for name, table in _tables().items():
        unknown = {case.op for case in table.CASES} - set(graphnet.ops.__all__)
        assert not unknown, f"test_{name}.py has rows for ops that are not exported: {unknown}"
        repeated = [i for i, n in Counter(case.id for case in table.CASES).items() if n > 1]
        assert not repeated, f"test_{name}.py repeats row ids {repeated}"
