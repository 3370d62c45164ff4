"""The Streamlit layer: widgets, figures and caching for the pages; the core package never imports it."""
