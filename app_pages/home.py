import streamlit as st

from resnet_lab import PRESETS
from resnet_lab.ui.cache import cached_device_description
from resnet_lab.ui.common import PAGES

st.title("ResNet Lab")
st.markdown(
    "Build ResNets, train them for a few minutes, and look inside — always next to their **plain twin**: "
    "the very same network with its skip connections taken out. Everything the lab shows is computed "
    "from the model in front of you, so the difference a skip connection makes is measured, not told."
)

st.subheader("The path")
cols = st.columns(3)
steps = [
    ("app_pages/build.py", "1 · Build",
     f"Pick one of {len(PRESETS)} presets (torchvision's ResNet-18…152, the paper's CIFAR ResNet-20…1202, "
     "pre-activation) or customise every block; compare parameters, FLOPs and the diagram with the plain twin."),
    ("app_pages/train.py", "2 · Train",
     "Launch a short run — ResNet and plain twin on the very same batches — and watch the curves grow live. "
     "Runs keep going when you close the tab."),
    ("app_pages/predictions.py", "3 · Inspect",
     "Predictions, feature maps and Grad-CAM (plus Guided Grad-CAM, Integrated Gradients, Saliency, Occlusion), "
     "ResNet and plain twin side by side, on a run or an untrained model."),
]
for col, (path, head, text) in zip(cols, steps):
    with col.container(border=True):
        st.markdown(f"**{head}**")
        st.caption(text)
        st.page_link(path, label=f"Open {PAGES[path][0]}", icon=PAGES[path][1])

st.page_link("app_pages/finetune.py", label="Fine-tune from ImageNet weights or a lab run, on your own images",
             icon=":material/tune:")
for path in ("app_pages/feature_maps.py", "app_pages/gradcam.py"):
    st.page_link(path, label=f"{PAGES[path][0]}: {PAGES[path][2]}", icon=PAGES[path][1])

st.subheader("Experiments: why skip connections matter")
st.caption("Each one puts a ResNet beside its plain twin and computes the evidence live.")
experiments = ("app_pages/gradient_flow.py", "app_pages/degradation.py", "app_pages/lesion.py",
               "app_pages/landscape.py")
for col, path in zip(st.columns(len(experiments)), experiments):
    with col.container(border=True):
        st.page_link(path, label=PAGES[path][0], icon=PAGES[path][1])
        st.caption(PAGES[path][2])

st.divider()
device = cached_device_description()
if device.startswith("GPU"):
    st.success(f"Computing on **{device}**.", icon=":material/memory:")
else:
    st.info(f"Computing on **{device}**. Everything works on a CPU; training is faster on a GPU.",
            icon=":material/memory:")
