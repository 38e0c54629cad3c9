"""A person opens a finished run, uploads a photo, reads the top-k, looks at Grad-CAM of the ResNet and its
plain twin side by side, and opens the feature maps of a block's residual branch."""

import re

from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect


def _photo(path):
    """A JPEG larger than the model's input: a dark ring on a light gradient (the door resizes it)."""
    im = Image.new("RGB", (300, 200))
    for x in range(300):
        ImageDraw.Draw(im).line([(x, 0), (x, 199)], fill=(200 - x // 4, 220, 255 - x // 3))
    ImageDraw.Draw(im).ellipse((100, 50, 200, 150), outline=(20, 20, 20), width=14)
    im.save(path, "JPEG", quality=90)
    return path


def _upload(page: Page, path) -> None:
    page.get_by_text("Upload", exact=True).first.click()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))


def _plot(page: Page, key: str):
    return page.locator(f".st-key-{key} .js-plotly-plot")


def test_open_a_run_upload_read_top_k_then_grad_cam_and_feature_maps(page: Page, app_url, trained_pair,
                                                                       tmp_path):
    expect.set_options(timeout=30_000)  # a first page load, and analysis on two CPU cores, take seconds
    resnet_id, plain_id = trained_pair
    photo = _photo(tmp_path / "ring photo.jpg")

    # 1. Predictions: the finished run is chosen, its plain twin beside it
    page.goto(f"{app_url}/predictions?run={resnet_id}")
    expect(page.get_by_role("heading", name="Predictions", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
        re.compile(rf"^#{resnet_id} tiny \(ResNet, shapes\)"))
    expect(page.get_by_role("combobox", name="Side by side with", exact=True)).to_have_value(
        re.compile(rf"^#{plain_id} tiny plain \(plain, shapes\)"))

    _upload(page, photo)
    expect(page.get_by_text("ring photo.jpg · resized to 32 px like the training images")).to_be_visible()
    for i in (0, 1):  # top-k bars for both models
        expect(_plot(page, f"pred_topk_{i}")).to_have_count(1)
        expect(_plot(page, f"pred_topk_{i}")).to_be_visible()
    bars = _plot(page, "pred_topk_0").evaluate("el => el.data[0].x.length")
    assert bars == 5
    expect(page.get_by_text(re.compile(r"^Predicts \w+ with \d+\.\d%"))).to_have_count(2)  # no true class known
    expect(page.get_by_text("what it sees (32 px)")).to_have_count(2)

    # 2. Grad-CAM of both models, side by side, on the uploaded photo
    page.get_by_role("link", name="Grad-CAM").first.click()
    expect(page.get_by_role("heading", name="Grad-CAM", exact=True)).to_be_visible()
    _upload(page, photo)
    captions = page.get_by_test_id("stImageCaption").filter(has_text=re.compile(r"^Grad-CAM"))
    expect(captions).to_have_count(2, timeout=60_000)
    images = page.get_by_test_id("stImage").filter(has=captions).locator("img")
    expect(images).to_have_count(2)
    for i in range(2):  # both overlays decoded at 256 px
        expect(images.nth(i)).to_have_js_property("naturalWidth", 256)
    boxes = [images.nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 5 and boxes[1]["x"] > boxes[0]["x"] + 100  # side by side

    # 3. Feature maps of a block's residual branch, model and twin
    page.get_by_role("link", name="Feature maps").first.click()
    expect(page.get_by_role("heading", name="Feature maps", exact=True)).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^Layer")).click()
    page.get_by_role("option", name=re.compile(r"layer2\.0 · residual branch F\(x\)")).click()
    expect(page.get_by_text(re.compile(r"^layer2\.0: out = ReLU\(F\(x\) \+ shortcut\)"))).to_be_visible()
    for i in (0, 1):
        expect(_plot(page, f"fm_grid_{i}")).to_have_count(1)  # the rerun's stale grid is gone
        expect(_plot(page, f"fm_grid_{i}")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^16 × 16 × 16 \(channels"))).to_have_count(2)
