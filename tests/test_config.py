"""The app's server configuration keeps its safe defaults."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_config_is_safe_by_default():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["server"]["fileWatcherType"] == "none"
    assert 0 < cfg["server"]["maxUploadSize"] <= 200
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["browser"]["gatherUsageStats"] is False


def test_no_full_garbage_collection_after_every_script_run():
    """30 live tabs tick about 20 times a second: a full collection after each was ~2 ms of the server's
    core apiece (resnet_lab.ui.session explains). The option must exist in this Streamlit, and be off."""
    from streamlit import config

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config.get_option("runner.postScriptGC") in (True, False)  # the option exists (a renamed one raises)
    assert cfg["runner"]["postScriptGC"] is False


def test_no_streamlit_import_outside_the_ui_package():
    for path in (ROOT / "resnet_lab").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "resnet_lab").parts:
            continue
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path
