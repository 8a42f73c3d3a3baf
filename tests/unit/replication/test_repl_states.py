"""State tables refuse illegal transitions."""

import pytest

from vigil.replication.states import (
    CONN_TRANSITIONS,
    REPL_TRANSITIONS,
    Conn,
    IllegalTransition,
    Repl,
    check,
)


def test_legal_and_illegal():
    check(CONN_TRANSITIONS, Conn.STANDALONE, Conn.CONNECTING)
    check(REPL_TRANSITIONS, Repl.SYNC_TARGET, Repl.ESTABLISHED)
    with pytest.raises(IllegalTransition):
        check(CONN_TRANSITIONS, Conn.STANDALONE, Conn.CONNECTED)
    with pytest.raises(IllegalTransition):
        check(REPL_TRANSITIONS, Repl.SYNC_SOURCE, Repl.SYNC_TARGET)
