"""DigitDraw: draw a digit and watch the networks of an MNIST study read it."""

import streamlit as st

st.set_page_config(page_title="DigitDraw", page_icon=":material/draw:", layout="wide")

pages = [
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("pages/read_number.py", title="Read a number", icon=":material/pin:"),
    st.Page("pages/inside.py", title="Inside the networks", icon=":material/neurology:"),
    st.Page("pages/training_curves.py", title="Training curves", icon=":material/show_chart:"),
    st.Page("pages/confusion_matrix.py", title="Confusion matrix", icon=":material/grid_on:"),
    st.Page("pages/compare.py", title="Compare models", icon=":material/leaderboard:"),
    st.Page("pages/your_drawings.py", title="Your drawings", icon=":material/collections:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
PAGE_STYLE = (
    "<style>[data-testid=stMainBlockContainer]{padding-top:1.5rem}"
    "@media (max-width:640px){[data-testid=stMainBlockContainer]{padding-top:3.75rem}}</style>"
)
navigation = st.navigation(pages)
# Streamlit leaves 6rem above every page; a quarter of it is room enough on a laptop, where the Draw
# page's whole loop (canvas, answer, Right and the digits) then fits a 1280x800 screen. On a narrow
# screen the header, with the sidebar's button, lies over the page's top: there the page starts below
# it (3.75rem). Style alone, so it takes no room on the page.
st.html(PAGE_STYLE)
with st.sidebar:
    st.caption(
        "Five fully connected networks trained on MNIST: 784-16-16-10 and 784-64-64-10 with sigmoid "
        "or ReLU, and 784-128-10; beside them, beyond the study, a small CNN (model 6). Retrain any of them "
        "with `python -m digitdraw train`, or train your own on the Train page."
    )
navigation.run()
