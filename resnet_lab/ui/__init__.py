"""Streamlit helpers shared by the pages. The only part of resnet_lab that imports streamlit."""
