"""Odd images through every page that takes one: the Predictions, Feature maps and Grad-CAM uploads (and the
Predictions camera), and the Fine-tune page's archive import. Streamlit's AppTest drives ``st.file_uploader``
and ``st.camera_input`` directly (``set_value((name, bytes, mime))``), so the real widgets are used.

Palette and 16-bit images several times larger than the model's input used to stop these pages with
"image has wrong mode"; now each one reaches the models as its expected colours (checked on the image a page
shows, against colours computed from the stored values), and a broken file gives an error naming it."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from resnet_lab.data.images import resize_square
from resnet_lab.data.registry import DataConfig, load_dataset
from tests.helpers.odd_images import CASES, ZIP_SKIPPED, check_imported, encoded, odd_zip, reference

S = 32  # the trained tiny runs' input size
MIME = {"PNG": "image/png", "TIFF": "image/tiff", "JPEG": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp"}
EXT = {"PNG": "png", "TIFF": "tif", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp"}
# (case, stored size): the two images of the bug report, a palette+alpha TIFF, a 16-bit strip with a
# transparency key, and an EXIF-rotated CMYK JPEG, all but the strip several times the model's input
UPLOADS = (("P", (200, 150)), ("I;16", (300, 300)), ("PA", (200, 150)), ("I;16+key", (1, 300)),
           ("CMYK-jpeg-exif8", (200, 150)))


@pytest.fixture
def media(monkeypatch):
    """Every media file the app stores this test, by file id (the last part of an st.image URL)."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        files[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


def shown(at, media, caption: str | None = None) -> list[np.ndarray]:
    """The pixels of the page's images (only those whose caption contains ``caption``, when given)."""
    out = []
    for el in at.get("image"):
        for url, cap in zip(el.value, el.captions or [None] * len(el.value)):
            if caption is None or (cap and caption in cap):
                file_id = url.rsplit("/", 1)[-1].split(".")[0]
                out.append(np.asarray(Image.open(io.BytesIO(media[file_id])).convert("RGB")))
    return out


def model_input(pixels: np.ndarray) -> torch.Tensor:
    """A 32 px image drawn with whole-number nearest-neighbour upscaling, back at 32 px (3 x 32 x 32 in [0, 1])."""
    k = pixels.shape[0] // S
    assert pixels.shape[:2] == (S * k, S * k), pixels.shape
    return torch.from_numpy(pixels[k // 2 :: k, k // 2 :: k].copy()).permute(2, 0, 1).float() / 255


def check_seen(name: str, size: tuple[int, int], x: torch.Tensor) -> None:
    """``x`` (what the page shows the model is fed) is the expected image resized like the training images."""
    c = CASES[name]
    want = resize_square(reference(c, *size), S)
    diff = (x - want).abs()
    pts = [S // 4, 3 * S // 4]
    assert float(diff[:, pts][:, :, pts].max()) <= (c.tol + 3) / 255, (name, size)
    assert float(diff.mean()) <= 8 / 255, (name, size)


def no_trouble(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def upload(at, key: str, name: str, size: tuple[int, int]) -> str:
    c = CASES[name]
    file_name = f"{name.replace(';', '_')}_{size[0]}x{size[1]}.{EXT[c.fmt]}"
    at.file_uploader(key=f"{key}_upload").set_value((file_name, encoded(c, *size), MIME[c.fmt])).run()
    return file_name


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def broken_upload_is_named_and_refused(at, key: str) -> None:
    data = encoded(CASES["I;16"], 300, 300)
    at.file_uploader(key=f"{key}_upload").set_value(("cut*off*.png", data[: len(data) // 2], "image/png")).run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "was not used" in errors[0] and "truncated" in errors[0]
    assert "cut\\*off\\*" in errors[0]  # the file name is user text: escaped, never bold markup


def test_predictions_upload_and_camera_take_odd_images(open_app_page, finished_run, media):
    at = open_app_page("app_pages/predictions.py")
    at.radio(key="pred_how").set_value("Upload").run()
    for name, size in UPLOADS:
        file_name = upload(at, "pred", name, size)
        no_trouble(at)
        assert f"resized to {S} px" in captions(at)
        seen = shown(at, media, "what it sees")
        assert len(seen) == 2  # the run and its twin, both fed the same 32 px image
        for pixels in seen:
            check_seen(name, size, model_input(pixels))
        assert file_name.split(".")[0].split("_")[0] in captions(at).replace("\\", "")
    broken_upload_is_named_and_refused(at, "pred")
    at.radio(key="pred_how").set_value("Camera").run()
    c = CASES["RGB-jpeg-exif6"]
    at.camera_input(key="pred_camera").set_value(("shot.jpg", encoded(c, 640, 480), "image/jpeg")).run()
    no_trouble(at)
    for pixels in shown(at, media, "what it sees"):
        check_seen("RGB-jpeg-exif6", (640, 480), model_input(pixels))


def test_feature_maps_upload_takes_odd_images(open_app_page, finished_run, media):
    at = open_app_page("app_pages/feature_maps.py")
    at.radio(key="fm_how").set_value("Upload").run()
    for name, size in UPLOADS:
        upload(at, "fm", name, size)
        no_trouble(at)
        assert f"resized to {S} px" in captions(at)
        picture = [p for p in shown(at, media) if p.shape[:2] == (128, 128)]  # the picked image, drawn at 128 px
        assert len(picture) == 1
        check_seen(name, size, model_input(picture[0]))
        assert at.get("plotly_chart"), "no feature maps drawn"
    broken_upload_is_named_and_refused(at, "fm")


def test_grad_cam_upload_takes_odd_images(open_app_page, finished_run, media):
    at = open_app_page("app_pages/gradcam.py")
    at.radio(key="cam_how").set_value("Upload").run()
    for name, size in UPLOADS:
        upload(at, "cam", name, size)
        no_trouble(at)
        assert f"resized to {S} px" in captions(at)
        assert len(shown(at, media)) >= 2  # an overlay per model
    broken_upload_is_named_and_refused(at, "cam")


def test_fine_tune_imports_an_archive_of_odd_images_that_trains_as_their_colours(open_app_page, no_workers_left):
    at = open_app_page("app_pages/finetune.py")
    at.radio(key="ft_data_kind").set_value("Your images").run()
    at.file_uploader(key="ft_zip").set_value(("odd.zip", odd_zip(), "application/zip"))
    at.text_input(key="ft_zip_name").set_value("odd")
    flips = at.radio(key="ft_zip_flips")
    flips.set_value(flips.options[1])  # a mirror image may be another class
    at.button(key="ft_import").click().run()
    no_trouble(at)
    assert at.selectbox(key="ft_folder").value == "odd"
    text = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "13 usable images in 2 classes" in text
    assert any(f"{len(ZIP_SKIPPED)} files were skipped" in w.value.replace("\\", "") for w in at.warning)
    why = next(d.value for d in at.dataframe if "why" in d.value.columns)  # the skipped files, with reasons
    assert len(why) == len(ZIP_SKIPPED) and why["why"].str.contains("px|truncated").all()
    check_imported(load_dataset(DataConfig(name="folder:odd", image_size=S)), S)
