"""Plotly figure builders and image overlays: data in, figures out. No streamlit, no computing."""
