"""Settings page (placeholder until the browser-studio issue fills it)."""

import streamlit as st

st.title("Settings")
st.info("This page is being built.")
