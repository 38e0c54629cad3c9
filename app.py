"""ResNet Lab: only a router. Pages live in app_pages/, logic in resnet_lab/."""

import streamlit as st

from resnet_lab.ui.common import PAGES, device_badge

st.set_page_config(page_title="ResNet Lab", page_icon=":material/science:", layout="wide")


def _page(path: str, default: bool = False) -> st.Page:
    title, icon, _ = PAGES[path]
    return st.Page(path, title=title, icon=icon, default=default)


nav = st.navigation({
    "ResNet Lab": [_page("app_pages/home.py", default=True)],
    "The path": [_page("app_pages/build.py"), _page("app_pages/train.py"), _page("app_pages/finetune.py")],
    "Inspect": [_page("app_pages/predictions.py"), _page("app_pages/feature_maps.py"), _page("app_pages/gradcam.py")],
    "Experiments": [_page("app_pages/gradient_flow.py"), _page("app_pages/degradation.py"),
                    _page("app_pages/lesion.py"), _page("app_pages/landscape.py")],
})
device_badge()
nav.run()
