"""TL Studio as served: ``streamlit run server.py`` (what scripts/app.sh runs).

The app itself is app.py; this file wraps it in ``st.App`` so that the upload gate
(`studio.access.UploadGate`) stands in front of Streamlit's upload endpoint: before sign-in, a
PUT to ``/_stcore/upload_file/...`` is refused before its body is read, and no session may hold
more uploads than ``server.maxUploadSize``. ``streamlit run app.py`` still works, without the gate
(the server's log says so when a password is set).
"""
import streamlit as st
from starlette.middleware import Middleware

from studio.access import UploadGate

app = st.App("app.py", middleware=[Middleware(UploadGate)])
