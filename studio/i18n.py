"""The studio's languages: English (the source strings, word for word) and Korean (a gettext catalog).

Translation is per session, never process-wide: sessions in different languages share one server,
so `_` and `ngettext` look up the language of the session whose script is running (its
``st.session_state``), and outside a session (the pure helpers' tests, the engine) they return English.

- ``_("Train")``: a message, translated now.
- ``ngettext("{n} image", "{n} images", n)``: a message with a plural.
- ``N_("Train")``: a lazy message for text built at import time (module constants, option labels); it
  is translated each time it is shown (``str()``, an f-string, ``_()``), in the language of that session.

The catalogs are ``studio/locale/<lang>/LC_MESSAGES/tlstudio.po`` with their compiled ``.mo``;
``python scripts/i18n.py extract|update|compile|check`` keeps them in step with the code
(docs/OPERATIONS.md). The language comes from, in this order: ``?lang=ko|en`` in the URL, the
sidebar switch (written back into the URL), the browser's preferred language (Korean or English).
"""
from __future__ import annotations

import contextvars
import functools
import gettext
import re
from pathlib import Path
from typing import Any, Callable, Mapping

DOMAIN = "tlstudio"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "English", "ko": "한국어"}  # each in its own language, as a switch shows them
DEFAULT = "en"
SESSION_KEY = "lang"  # the session's chosen language (also the URL's query parameter)
_PINNED: contextvars.ContextVar[str | None] = contextvars.ContextVar("tlstudio_lang", default=None)


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of `lang` (English: none, the source strings are English)."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, [lang], fallback=True)


def _in_session() -> bool:
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:  # pragma: no cover - another Streamlit layout
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    return get_script_run_ctx(suppress_warning=True) is not None


def current() -> str:
    """The running session's language ("en" outside a session or before one was chosen)."""
    pinned = _PINNED.get()
    if pinned is not None:
        return pinned
    if not _in_session():
        return DEFAULT
    import streamlit as st

    lang = st.session_state.get(SESSION_KEY)
    return lang if lang in LANGUAGES else DEFAULT


def _(message: Any) -> str:
    """`message` in the running session's language (a lazy message too)."""
    if isinstance(message, LazyString):
        message = message.message
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """`singular` or `plural` as `n` asks, in the running session's language."""
    return translations(current()).ngettext(singular, plural, n)


class LazyString:
    """A message translated when it is shown, not when it was written (see `N_`).

    Not a ``str``: a place that needs text calls ``str()`` (or ``_()``) on it, so an untranslated
    use fails loudly instead of showing English in a Korean page.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return _(self.message)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"N_({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyString) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)

    def format(self, *args: Any, **kwargs: Any) -> str:
        return str(self).format(*args, **kwargs)

    def startswith(self, prefix: str) -> bool:
        return str(self).startswith(prefix)


def N_(message: str) -> LazyString:
    """A message for text built at import time, translated whenever it is shown (extracted like `_`)."""
    return LazyString(message)


def words(mapping: Mapping[Any, Any]) -> dict:
    """A dict of lazy labels as plain text in the running session's language (for ``format_func``)."""
    return {key: str(value) for key, value in mapping.items()}


# --- Korean particles ------------------------------------------------------------------

_PARTICLES = {"은(는)": ("은", "는"), "이(가)": ("이", "가"), "을(를)": ("을", "를"), "과(와)": ("과", "와"),
              "와(과)": ("과", "와"), "(으)로": ("으로", "로"), "(이)라는": ("이라는", "라는")}
_PARTICLE = re.compile(r"([^\s])([”’\"')\]]*)(" + "|".join(re.escape(p) for p in _PARTICLES) + ")")


def particles(text: str) -> str:
    """Korean particles written for any word (``{option}은(는)``) fitted to the word before them once a
    value is in place: ``학습률은``, ``배치 크기는``. After a word that is not Hangul (a number, a file
    name) both forms stay, as Korean software writes them.

    >>> particles("배치 크기은(는) 1 이상, 학습률은(는) 양수, 파일(으)로, 모델(으)로, x.h5을(를)")
    '배치 크기는 1 이상, 학습률은 양수, 파일로, 모델로, x.h5을(를)'
    """
    def fit(match: re.Match) -> str:
        last, closing, particle = match.groups()
        if not "가" <= last <= "힣":
            return match.group(0)
        final = (ord(last) - ord("가")) % 28
        with_final, without = _PARTICLES[particle]
        chosen = with_final if final and not (particle == "(으)로" and final == 8) else without  # 8: ㄹ
        return last + closing + chosen

    return _PARTICLE.sub(fit, text)


# --- choosing the language ------------------------------------------------------------

def from_accept_language(header: str | None) -> str | None:
    """The first of our languages the browser's ``Accept-Language`` (or ``st.context.locale``) asks for.

    >>> from_accept_language("ko-KR,ko;q=0.9,en-US;q=0.8")
    'ko'
    >>> from_accept_language("de-DE,de;q=0.9") is None
    True
    """
    if not header:
        return None
    ranked = []
    for i, part in enumerate(str(header).split(",")):
        tag, _sep, params = part.strip().partition(";")
        q = re.search(r"q\s*=\s*([0-9.]+)", params)
        try:
            weight = float(q.group(1)) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().lower().replace("_", "-").split("-")[0]))
    for _w, _i, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return None


def browser_language() -> str | None:
    """What the browser asks for (Streamlit's ``st.context.locale``, else the Accept-Language header)."""
    import streamlit as st

    for read in (lambda: st.context.locale, lambda: st.context.headers.get("Accept-Language")):
        try:
            lang = from_accept_language(read())
        except Exception:  # noqa: BLE001 - no browser context (AppTest, a bare script run)
            lang = None
        if lang:
            return lang
    return None


def choose() -> str:
    """Settle the session's language before a page runs: on a fresh session the URL's ``?lang=``,
    else the session's choice (the switch), else the browser's, else English."""
    import streamlit as st

    if not st.session_state.get("_lang_settled"):  # a fresh session (a reload, a link): the URL first
        st.session_state["_lang_settled"] = True
        asked = st.query_params.get(SESSION_KEY)
        if asked in LANGUAGES:
            st.session_state[SESSION_KEY] = asked
            st.session_state["_lang_from_browser"] = False
    if st.session_state.get(SESSION_KEY) not in LANGUAGES:
        st.session_state[SESSION_KEY] = browser_language() or DEFAULT
        st.session_state["_lang_from_browser"] = True
    return st.session_state[SESSION_KEY]


def url_value() -> str | None:
    """The language for the URL's ``lang`` parameter: the session's when it was chosen (by a link or the
    switch), none when it came from the browser (a reload asks the browser again)."""
    import streamlit as st

    if st.session_state.get("_lang_from_browser"):
        return None
    lang = st.session_state.get(SESSION_KEY)
    return lang if lang in LANGUAGES else None


def _switched() -> None:
    import streamlit as st

    chosen = st.session_state.get("lang_switch")
    if chosen in LANGUAGES:
        st.session_state[SESSION_KEY] = chosen
        st.session_state["_lang_from_browser"] = False


def switch() -> None:
    """The sidebar's language switch (English / 한국어)."""
    import streamlit as st

    st.session_state["lang_switch"] = current()
    # a radio, not a segmented control: pages' button groups keep their places in the page's order
    st.radio(_("Language"), list(LANGUAGES), key="lang_switch", format_func=LANGUAGES.get, on_change=_switched,
             horizontal=True, label_visibility="collapsed")


def pinned(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` speaking the running session's language wherever it is called later: a widget's
    ``format_func`` may run outside the script's thread (Streamlit's AppTest does), where no session
    says which language."""
    lang = current()

    def call(*args: Any, **kwargs: Any) -> Any:
        token = _PINNED.set(lang)
        try:
            return fn(*args, **kwargs)
        finally:
            _PINNED.reset(token)

    return call


def shown(mapping: Mapping[Any, Any]) -> Callable[[Any], str | None]:
    """A ``format_func`` showing a dict of (lazy) labels in the running session's language."""
    return pinned(lambda key: None if mapping.get(key) is None else str(mapping.get(key)))
