import streamlit as st

st.title("gradcam")
st.write("under construction")
