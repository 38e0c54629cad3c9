"""The Gallery's "Take it home" download: pick a finished run, and the button delivers that run's zip (built only
when clicked) under a name made from its id and name."""

import io
import json
import zipfile

from streamlit.runtime.media_file_manager import MediaFileManager

from resnet_lab.export import LAB_SNIPPET, MANIFEST, MODEL_MODULE, WEIGHTS, zip_name
from resnet_lab.store import Store

PAGE = "app_pages/gallery.py"


def test_pick_a_run_and_take_its_zip_home(finished_run, open_app_page, monkeypatch):
    generators = {}  # what the page registers for deferred download: file name -> the callable a click runs
    add = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        generators[file_name] = (data_callable, mimetype)
        return add(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    store = Store()
    runs = {rid: store.runs.get(rid) for rid in finished_run}
    store.close()

    at = open_app_page(PAGE)
    assert not at.error
    for rid in reversed(finished_run):  # the plain twin, then the ResNet
        at.selectbox(key="gallery_open").set_value(rid).run()
        assert not at.exception
        button = at.get("download_button")[0]
        assert button.proto.label == "Take it home (.zip)" and button.proto.deferred_file_id
        name = zip_name(rid, runs[rid].name)
        make, mime = generators[name]
        assert mime == "application/zip"
        with zipfile.ZipFile(io.BytesIO(make())) as z:
            assert {MANIFEST, WEIGHTS, MODEL_MODULE, LAB_SNIPPET} <= set(z.namelist())
            manifest = json.loads(z.read(MANIFEST))
        assert manifest["run"]["id"] == rid and manifest["model"]["spec"] == runs[rid].spec
        assert manifest["model"]["describe"].startswith("Plain" if rid == finished_run[1] else "ResNet")
