"""The PostgreSQL connection Zhongtai's engines open: psycopg's, keeping its prepared statements
when a transaction rolls back.

psycopg prepares a statement on a connection once it has run a few times there, so that
PostgreSQL plans it once instead of on every run. But it forgets every prepared statement of the
connection (and sends ``DEALLOCATE ALL``) whenever ``rollback()`` ends a transaction: a rolled
back ``DROP`` or ``ALTER`` could leave a prepared statement pointing at objects that no longer
look the same. The API rolls back often and never runs DDL in a request: every refused checkout
(the last unit taken meanwhile), every failed request, every background pass that only read.
Each such rollback sent its connection back to planning every statement for the next runs;
under checkout load that was most of PostgreSQL's planning, about as much CPU as executing.

Prepared statements are not transactional (PostgreSQL keeps them across ROLLBACK), and psycopg
already drops a statement whose PREPARE failed, so keeping them is safe as long as no rolled-back
transaction changed the schema. Schema changes run through Alembic on a connection of their own
(``core.migrate``), whose plain psycopg connection keeps the cautious behaviour.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

#: psycopg's own runner of a bare command (private API, present from 3.0 to 3.3). A release
#: without it makes ``rollback()`` psycopg's again, correct and only slower, rather than an
#: AttributeError on every rollback; this module's tests then fail on the lost statements.
_RUN_COMMAND: Any = getattr(psycopg.Connection, "_exec_command", None)


class PreparedKeepingConnection(psycopg.Connection[Any]):
    """A psycopg connection whose ``rollback()`` keeps the prepared statements."""

    def rollback(self) -> None:
        """ROLLBACK an open transaction, as psycopg does, without forgetting what is prepared.

        In pipeline mode, or with no transaction open, psycopg's own ``rollback()`` runs.
        """
        if (
            _RUN_COMMAND is None
            or self.pgconn.pipeline_status != pq.PipelineStatus.OFF
            or self.pgconn.transaction_status not in _OPEN
        ):
            super().rollback()
            return
        with self.lock:
            self.wait(_RUN_COMMAND(self, b"ROLLBACK"))


def open_connection(
    _dialect: Any, _record: Any, cargs: Any, cparams: Any
) -> PreparedKeepingConnection:
    """The engines' ``do_connect`` listener: what psycopg.connect would open, of this class."""
    return PreparedKeepingConnection.connect(*cargs, **cparams)
