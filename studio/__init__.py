"""TL Studio's UI package: everything the Streamlit pages share that is not the engine.

- `state`: the selection (kept in ``st.session_state`` and in the URL's query parameters)
- `caches`: ``st.cache_resource`` / ``st.cache_data`` wrappers around engine calls
- `components`: guards, the sidebar, the password, run panels, prediction cards
- `charts`: Plotly figures from plain values
- `text`: the words, labels and number formats the pages show
- `i18n`: the session's language (English, Korean) and ``_``/``N_``/``ngettext`` over the catalogs in
  ``studio/locale``; `engine_words`: the engine's sentences the pages show, translated by template

The engine (`tlcore`) never imports this package; this package imports the engine.
"""
