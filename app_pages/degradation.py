import streamlit as st

from resnet_lab.ui.common import PAGES, coming_next

st.title(PAGES["app_pages/degradation.py"][0])
coming_next(PAGES["app_pages/degradation.py"][2] + ".", "it is being built now.")
