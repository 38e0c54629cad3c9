"""The test tiers (tests/conftest.py gives each test its tier by where it lives): the modules named as the
process tier exist, and no module of the unit tier starts a process, so `make test-fast` stays fast and whole."""

import re
from pathlib import Path

from tests.helpers.tiers import PROCESS_MODULES, TESTS, tier_of

STARTS_A_PROCESS = re.compile(r"subprocess\.(run|Popen|call|check_call|check_output)\(|\b(mp|multiprocessing)\.Process\(")


def test_every_module_named_as_the_process_tier_exists():
    assert sorted(m for m in PROCESS_MODULES if not (TESTS / m).is_file()) == []


def test_tiers_follow_the_folders_and_the_process_list():
    assert tier_of(TESTS / "browser" / "test_page_tour.py") == "browser"
    assert tier_of(TESTS / "app" / "test_pages.py") == "app"
    assert tier_of(TESTS / "train" / "test_processes.py") == "process"
    assert tier_of(TESTS / "train" / "test_engine.py") == "unit"


def test_no_unit_module_starts_a_process():
    found = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
                   if tier_of(p) == "unit" and STARTS_A_PROCESS.search(p.read_text()))
    assert found == [], f"start processes but are in the unit tier (add them to PROCESS_MODULES): {found}"
