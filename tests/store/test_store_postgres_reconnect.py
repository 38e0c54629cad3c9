"""A PostgreSQL store outlives its server's restart: the next transaction or read opens a new connection (trying
while the server comes back), a transaction cut off half-way is lost whole and said so, and a server gone for good
is a clear error after the retry window — never a wrong answer, never half a transaction."""

import psycopg
import pytest

from resnet_lab.store import Store
from resnet_lab.store.db import DB_RETRY_ENV
from resnet_lab.store.dialect import DatabaseUnreachable
from tests.helpers import pg


@pytest.fixture
def server():
    try:
        with pg.own_server() as (url, folder):
            yield url, folder
    except pg.NoServer as e:
        pytest.skip(str(e))


def names(store):
    return sorted(p.name for p in store.people.list())


def test_a_restarted_server_is_reconnected_and_a_transaction_cut_off_is_lost_whole(server, tmp_path, monkeypatch):
    url, folder = server
    store = Store(url, home=tmp_path)
    store.people.create("Ada", "hash-ada")
    other = Store(url, home=tmp_path)  # a second process's connection, idle through the restart
    pg.control(folder, "restart")
    assert names(store) == ["Ada"]  # a read on its own: reconnected and answered
    store.people.create("Grace", "hash-grace")  # a write transaction: its BEGIN reconnects
    assert names(other) == ["Ada", "Grace"] and store.db.con.reconnects == other.db.con.reconnects == 1

    with pytest.raises(psycopg.OperationalError):
        with store.db.tx() as con:
            con.execute("INSERT INTO people(name, token_hash, created_at, last_seen) VALUES (?, ?, 0, 0)",
                        ("Linus", "hash-linus"))
            pg.control(folder, "restart")
            con.execute("INSERT INTO people(name, token_hash, created_at, last_seen) VALUES (?, ?, 0, 0)",
                        ("Barbara", "hash-barbara"))
    assert names(store) == names(other) == ["Ada", "Grace"]  # neither row of the cut-off transaction was kept
    store.people.create("Barbara", "hash-barbara")  # and the store goes on
    assert names(other) == ["Ada", "Barbara", "Grace"]
    store.close()
    other.close()


def test_a_server_gone_longer_than_the_retry_window_is_a_clear_error_and_its_return_is_picked_up(
        server, tmp_path, monkeypatch):
    url, folder = server
    monkeypatch.setenv(DB_RETRY_ENV, "1")
    store = Store(url, home=tmp_path)
    store.people.create("Ada", "hash-ada")
    pg.control(folder, "halt")
    with pytest.raises(DatabaseUnreachable, match=r"could not be reached for 1 s") as e:
        names(store)
    assert "127.0.0.1" in str(e.value)  # where (a password in the URL is masked: dialect.shown_url)
    with pytest.raises(DatabaseUnreachable):
        Store(url, home=tmp_path)  # a new process meanwhile: the same clear error
    pg.control(folder, "restart")
    assert names(store) == ["Ada"]
    store.close()
