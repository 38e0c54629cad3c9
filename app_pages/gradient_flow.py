import streamlit as st

from resnet_lab.ui.common import coming_next

st.title("Gradient flow")
coming_next(
    "Per-layer gradient norms of a ResNet and its plain twin, the degradation experiment, lesion studies "
    "and loss landscapes — computed live.",
    "it arrives after training and inspection.",
)
