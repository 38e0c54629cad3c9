"""The server-side guard on live views' timer reruns (resnet_lab/ui/rerun_guard.py): early ticks are dropped
before Streamlit starts anything, stale timers are stopped at the browser, clicks and full reruns pass."""

import logging
from types import SimpleNamespace

import pytest
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime.app_session import AppSession, AppSessionState

from resnet_lab.ui import rerun_guard


def tick(fragment_id: str, auto: bool = True) -> ClientState:
    cs = ClientState()
    cs.fragment_id = fragment_id
    cs.is_auto_rerun = auto
    return cs


@pytest.fixture()
def session():
    sid = f"s{id(object())}"
    yield sid
    rerun_guard.forget(sid)


def test_a_tick_sooner_than_half_its_pace_is_dropped_and_one_on_time_runs(session):
    rerun_guard.note_pace(session, "f", 1.5)
    assert rerun_guard.admit(session, "f", now=100.0)
    assert not rerun_guard.admit(session, "f", now=100.5)  # 0.5 s < 0.75 s
    assert not rerun_guard.admit(session, "f", now=100.74)
    assert rerun_guard.admit(session, "f", now=100.8)  # measured from the last one that ran
    assert not rerun_guard.admit(session, "f", now=101.0)
    assert rerun_guard.admit(session, "f", now=102.3)
    counts = rerun_guard.stats()[session]
    assert (counts["ticks"], counts["ticks_dropped"], counts["paces_announced"]) == (3, 3, 1)


def test_a_fragment_of_unknown_pace_and_other_fragments_are_never_held(session):
    assert all(rerun_guard.admit(session, "unknown", now=50.0 + i * 0.01) for i in range(5))
    rerun_guard.note_pace(session, "a", 20.0)
    assert rerun_guard.admit(session, "a", now=1.0)
    assert rerun_guard.admit(session, "b", now=1.1)  # another fragment, another clock
    assert rerun_guard.admit(f"{session}-other", "a", now=1.2)  # another session too
    rerun_guard.forget(f"{session}-other")


def test_a_new_pace_applies_to_the_next_tick(session):
    rerun_guard.note_pace(session, "f", 20.0)
    assert rerun_guard.admit(session, "f", now=0.0)
    assert not rerun_guard.admit(session, "f", now=2.0)
    rerun_guard.note_pace(session, "f", 1.5)  # a job started: the page set the fast pace
    assert rerun_guard.admit(session, "f", now=2.0)


def test_decide_lets_clicks_and_full_reruns_through_and_stops_stale_timers(session):
    has = {"live"}.__contains__
    rerun_guard.note_pace(session, "live", 1.5)
    assert rerun_guard.decide(session, None, has) == "run"
    assert rerun_guard.decide(session, ClientState(), has) == "run"  # a full rerun
    assert rerun_guard.decide(session, tick("live"), has) == "run"
    assert rerun_guard.decide(session, tick("live", auto=False), has) == "run"  # a click inside it
    assert rerun_guard.decide(session, tick("live"), has) == "drop"
    assert rerun_guard.decide(session, tick("gone"), has) == "stop"
    counts = rerun_guard.stats()[session]
    assert counts["full_reruns"] == 2 and counts["stale_stopped"] == 1 and counts["ticks_dropped"] == 1


def test_installed_on_the_pinned_streamlit_it_drops_before_streamlit_and_stops_at_the_browser(session, caplog):
    import resnet_lab.ui.session  # noqa: F401  (installs the guard, as every page does)

    assert rerun_guard.install()
    sent = []
    stub = SimpleNamespace(id=session, has_fragment={"live"}.__contains__,
                           _browser_queue=SimpleNamespace(enqueue=sent.append),
                           _message_enqueued_callback=None, _state=AppSessionState.SHUTDOWN_REQUESTED)
    AppSession._enqueue_forward_msg(stub, _auto_rerun_msg("live", 1.5))  # the server announces the pace
    assert sent[-1].auto_rerun.interval == 1.5
    with caplog.at_level(logging.WARNING, logger="streamlit.runtime.app_session"):
        AppSession.request_rerun(stub, tick("live"))  # on time: Streamlit's own request_rerun sees it
        assert "Discarding rerun request" in caplog.text
        caplog.clear()
        AppSession.request_rerun(stub, tick("live"))  # at once again: dropped before Streamlit
        assert caplog.text == ""
    AppSession.request_rerun(stub, tick("gone"))
    assert list(sent[-1].stop_auto_rerun.fragment_ids) == ["gone"]


def _auto_rerun_msg(fragment_id: str, every: float):
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.auto_rerun.fragment_id = fragment_id
    msg.auto_rerun.interval = every
    return msg
