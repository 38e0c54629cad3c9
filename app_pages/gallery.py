"""The class gallery: every finished run, whose it is, what it is and how well it did."""

import streamlit as st

from resnet_lab.ui.common import PAGES
from resnet_lab.ui.gallery import gallery
from resnet_lab.ui.identity import current_identity

st.title(PAGES["app_pages/gallery.py"][0])
st.caption("Every finished run on this server — yours and everyone else's. Anyone may look at any run (open it in "
           "Predictions, Feature maps, Grad-CAM) or take it home as a zip (its weights, a manifest and Python that "
           "loads them); only its owner or the teacher may stop, resume or delete it.")
gallery("gallery", current_identity())
