"""Who is using this browser session.

Two modes, decided by the Streamlit secrets (``.streamlit/secrets.toml``):

- no ``[auth]`` section: the embedded **single-user local mode** — no sign-in, one person
  (``PERFLOOP_AUTHOR``) who may do everything; every page says so in the sidebar;
- an ``[auth]`` section (OpenID Connect, as Streamlit documents it for ``st.login``): people
  sign in; the first becomes admin; what each may read and change follows their role and the
  sessions' visibility (``app.services.access``). Anonymous visitors see public sessions where
  ``PERFLOOP_PUBLIC_READERS`` allows, else only the sign-in button.

Pages pass :func:`actor` to every service call (``actor=actor()``); the services decide.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.services.access import ANONYMOUS, Actor, local_actor

_SIGNED_IN = "perfloop:signed_in"  # (identity key, Actor) of this browser session


def sign_in_configured() -> bool:
    """True when the secrets carry an ``[auth]`` section (the team mode)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all: the local mode
        return False


def _claims() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # noqa: BLE001 - outside a script run
        return {}


def actor() -> Actor:
    """The acting person of this run: the local user, the signed-in person, or anonymous."""
    from app.services import get_context
    from app.services.access import find_user, sign_in

    ctx = get_context()
    if not sign_in_configured():
        return local_actor(ctx.settings)
    claims = _claims()
    if not claims.get("is_logged_in"):
        st.session_state.pop(_SIGNED_IN, None)
        return ANONYMOUS
    # the e-mail names the person unless the provider says it is not verified
    email = claims.get("email") if claims.get("email_verified") is not False else None
    name = str(email or claims.get("sub") or "").strip()
    key = (claims.get("iss"), claims.get("sub"), name)
    cached = st.session_state.get(_SIGNED_IN)
    if cached and cached[0] == key:
        # the role may have changed since (an admin set it): read it again, cheaply
        fresh = find_user(cached[1].name, ctx=ctx)
        if fresh is not None:
            return fresh
    who = sign_in(
        name=name,
        email=email,
        display_name=claims.get("name"),
        issuer=claims.get("iss"),
        subject=claims.get("sub"),
        ctx=ctx,
    )
    st.session_state[_SIGNED_IN] = (key, who)
    return who


def sidebar() -> Actor:
    """The identity block of every page's sidebar; stops the page for anonymous visitors of an
    instance that has no public readers."""
    from app.services import get_context

    who = actor()
    if not sign_in_configured():
        st.caption(f"🖥️ **Local single-user mode** — no sign-in; you are `{who.name}`.")
        return who
    if who.signed_in:
        st.caption(f"👤 Signed in as **{who.name}** · {who.role}")
        if st.button("Sign out", key="identity_sign_out"):
            st.logout()
        return who
    st.caption("Not signed in.")
    if st.button("Sign in", key="identity_sign_in", type="primary"):
        st.login()
    if not get_context().settings.public_readers:
        st.info("Sign in to use perfloop.")
        st.stop()
    return who
