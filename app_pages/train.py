import streamlit as st

from resnet_lab.ui.common import coming_next
from resnet_lab.ui.state import TRAIN_SPEC_KEY

st.title("Train")
spec = st.session_state.get(TRAIN_SPEC_KEY)
if spec is not None:
    st.success(f"Model carried from Build: **{spec.describe()}** — plain twin: {spec.twin().describe()}.",
               icon=":material/check_circle:")
    st.code(spec.to_json(), language="json")
else:
    st.caption("No model chosen yet: pick one on the Build page and press “Use this model”.")
    st.page_link("app_pages/build.py", label="Go to Build", icon=":material/construction:")
coming_next(
    "Launch short training runs — a ResNet and its plain twin on the very same batches — with live loss "
    "and accuracy curves, a run table, stop and resume.",
    "it arrives with the training engine.",
)
