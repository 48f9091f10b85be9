"""moto's classes, patched from outside (never site-packages) for as long as the double runs.

moto looks its handler methods up on the class for every request, in-process (mock_aws) and in
its server alike, so replacing class attributes covers both. Patches nest: the in-process double
and a server in the same process install them once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

from tenantlake_dev.aws_double import dynamodb, sts

_lock = threading.Lock()
_depth = 0
_stack: ExitStack | None = None


def _targets():
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.sts.responses import TokenResponse

    return [
        (TokenResponse, "assume_role", sts.token_assume_role),
        (Table, "put_item", dynamodb.table_put_item),
        (Table, "delete_item", dynamodb.table_delete_item),
        (DynamoDBBackend, "update_item", dynamodb.backend_update_item),
        (DynamoDBBackend, "update_continuous_backups", dynamodb.backend_update_continuous_backups),
        (DynamoDBBackend, "describe_continuous_backups", dynamodb.backend_describe_continuous_backups),
        (DynamoHandler, "export_table_to_point_in_time", dynamodb.handler_export_table_to_point_in_time),
        (DynamoHandler, "describe_export", dynamodb.handler_describe_export),
        (DynamoHandler, "list_exports", dynamodb.handler_list_exports),
    ]


@contextmanager
def patched() -> Iterator[None]:
    global _depth, _stack
    with _lock:
        if _depth == 0:
            stack = ExitStack()
            for owner, name, wrap in _targets():
                stack.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
            _stack = stack
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _stack is not None:
                _stack.close()
                _stack = None
