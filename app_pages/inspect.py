import streamlit as st

from resnet_lab.ui.common import coming_next

st.title("Inspect")
coming_next(
    "Predictions, feature maps and Grad-CAM for a trained (or untrained) model, ResNet and plain twin side by side.",
    "it arrives once runs can be trained and saved.",
)
