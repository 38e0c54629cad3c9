"""Small pieces every page uses."""

from __future__ import annotations

import string

import streamlit as st

from .cache import cached_device_description

PAGES = {  # path -> (title, icon, one-line purpose)
    "app_pages/home.py": ("Home", ":material/home:", "What the lab is and where to start"),
    "app_pages/build.py": ("Build", ":material/construction:", "Assemble a ResNet and see its plain twin"),
    "app_pages/train.py": ("Train", ":material/monitoring:", "Short training runs with live curves"),
    "app_pages/finetune.py": ("Fine-tune", ":material/tune:", "Start from pretrained weights, adapt to your images"),
    "app_pages/predictions.py": ("Predictions", ":material/label:",
                                 "Top-k, confusion matrix, per-class accuracy, confident mistakes"),
    "app_pages/feature_maps.py": ("Feature maps", ":material/grid_view:",
                                  "Inside any block: x, F(x), the shortcut, the sum; layer responses"),
    "app_pages/gradcam.py": ("Grad-CAM", ":material/center_focus_strong:",
                             "Where the network looks: Grad-CAM and four more attributions"),
    "app_pages/gradient_flow.py": ("Gradient flow", ":material/waterfall_chart:",
                                   "Per-layer gradients and signal by depth, ResNet vs plain, live"),
    "app_pages/degradation.py": ("Degradation", ":material/trending_down:",
                                 "Do deeper plain nets train worse, and deeper ResNets not? (one click)"),
    "app_pages/lesion.py": ("Lesion study", ":material/content_cut:",
                            "Remove one block at test time: does the ResNet shrug, the plain net collapse?"),
    "app_pages/landscape.py": ("Loss landscape", ":material/landscape:",
                               "Filter-normalized 1D/2D slices of the loss around a trained run"),
    "app_pages/gallery.py": ("Gallery", ":material/photo_library:", "Every finished run of the class, and whose it is"),
    "app_pages/challenge.py": ("Challenges", ":material/emoji_events:",
                               "Submit a run; it is scored once on images nobody has seen"),
    "app_pages/teacher.py": ("Teacher", ":material/school:",
                             "Everyone's jobs, the queue and its turns, the devices, the class"),
}

_MARKDOWN_SPECIAL = {c: "\\" + c for c in string.punctuation}


def plain(text: object, max_chars: int = 200) -> str:
    """Untrusted text (a display name, a run or file name) made safe to put *inside* Markdown: every
    punctuation mark is backslash-escaped, so ``**bold**``, ``[link](…)``, ``:red[x]``, ``$x$`` and ``<img …>``
    all show literally; line breaks become spaces. Where the text stands alone, prefer ``st.text``."""
    flat = " ".join(str(text).split())
    if len(flat) > max_chars:
        flat = flat[: max_chars - 1] + "…"
    return flat.translate(str.maketrans(_MARKDOWN_SPECIAL))


def device_badge() -> None:
    st.sidebar.caption(f"Computing on **{cached_device_description()}**")
