"""A person uploads a zip of their own images, reads the report, fine-tunes, and sees curves."""

import io
import re
import zipfile

from PIL import Image
from playwright.sync_api import Page, expect


def make_zip(path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for c, colour in (("reds", (200, 30, 30)), ("blues", (30, 30, 200))):
            for i in range(10):
                buf = io.BytesIO()
                Image.new("RGB", (40, 40), tuple(min(255, v + 3 * i) for v in colour)).save(buf, "PNG")
                z.writestr(f"my_photos/{c}/{i}.png", buf.getvalue())
        z.writestr("my_photos/.DS_Store", b"junk")
        z.writestr("__MACOSX/my_photos/._0.png", b"junk")
        z.writestr("my_photos/reds/broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")


def test_upload_zip_see_report_fine_tune_and_see_curves(page: Page, app_url, tmp_path):
    archive = tmp_path / "photos.zip"
    make_zip(archive)
    page.goto(app_url + "/finetune")
    expect(page.get_by_role("heading", name="Fine-tune", exact=True)).to_be_visible(timeout=60_000)

    page.get_by_text("Scratch", exact=True).click()
    page.get_by_text("Your images", exact=True).click()
    page.locator("input[type=file]").first.set_input_files(str(archive))
    name = page.get_by_label("Name for the dataset", exact=True)
    name.fill("my-photos")
    name.press("Enter")
    main = page.get_by_test_id("stMain")
    page.get_by_role("button", name="Import").click()  # the flip question is not answered yet
    expect(main).to_contain_text("Say whether a mirror image keeps its label")
    page.get_by_text("Yes — flips keep the label", exact=False).click()
    page.get_by_role("button", name="Import").click()

    expect(main).to_contain_text("my-photos: 20 usable images in 2 classes")
    expect(main).to_contain_text("1 file(s) skipped")

    epochs = page.get_by_label("Epochs", exact=True)
    expect(epochs).to_have_count(1)  # the rerun that added the data settings has finished
    epochs.fill("2")
    epochs.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Fine-tune").click()
    expect(page.get_by_role("heading", name=re.compile("2 runs side by side"))).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "() => { const el = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
        " return el && el.data && el.data.length >= 2 && el.data[0].x.length >= 1; }", timeout=120_000)
    expect(main).to_contain_text("linear: done", timeout=120_000)
    expect(main).to_contain_text("full: done", timeout=120_000)
