import streamlit as st

st.title("predictions")
st.write("under construction")
