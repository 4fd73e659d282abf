"""Review page (placeholder until the browser-studio issue fills it)."""

import streamlit as st

st.title("Review")
st.info("This page is being built.")
