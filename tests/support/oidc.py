"""A real OpenID Connect provider for sign-in tests: ``oidc-provider-mock`` (PyPI) run as a
subprocess on a free port. It accepts any client id and secret and any redirect URI, and its
authorize page signs in whoever's ``sub`` is typed there (the ``email`` claim is the ``sub``).

    with OIDCProvider(log_path=ARTIFACTS / "oidc.log") as provider:
        provider.metadata_url  # http://127.0.0.1:PORT/.well-known/openid-configuration
        provider.auth_secrets(redirect_uri="http://127.0.0.1:8501/oauth2callback")

Run it on its own with ``oidc-provider-mock --port 9400`` (what compose's demo profile does).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.support.net import free_port

CLIENT_ID = "perfloop"
CLIENT_SECRET = "perfloop-demo-secret"  # the provider accepts any: this one is only a label


class OIDCProvider:
    """``oidc-provider-mock`` on ``127.0.0.1:port``, started on enter and stopped on exit."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def auth_secrets(self, *, redirect_uri: str) -> str:
        """The ``[auth]`` section of a ``secrets.toml`` that signs in against this provider."""
        return (
            "[auth]\n"
            f"redirect_uri = {json.dumps(redirect_uri)}\n"
            f"cookie_secret = {json.dumps(secrets.token_hex(32))}\n"
            f"client_id = {json.dumps(CLIENT_ID)}\n"
            f"client_secret = {json.dumps(CLIENT_SECRET)}\n"
            f"server_metadata_url = {json.dumps(self.metadata_url)}\n"
        )

    def start(self, timeout: float = 30.0) -> None:
        bin_dir = Path(sys.executable).parent
        self._log = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [str(bin_dir / "oidc-provider-mock"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.metadata_url, timeout=2) as r:
                    if r.status == 200 and json.load(r).get("issuer") == self.issuer:
                        return
            except OSError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"oidc-provider-mock did not start on port {self.port}"
                    + (f" (see {self.log_path})" if self.log_path else "")
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> OIDCProvider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
