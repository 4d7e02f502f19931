"""Start the test OpenID Connect provider (this package) as its own
process on a free loopback port, with a fresh RSA key and SQLite file."""

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.real_services import ROOT, free_port, wait_for

# The provider is served as 127.0.0.1 and Fleet UI as localhost (pytest-django's
# live_server): two sites, as in production, so neither sees the other's cookies.
HOST = "127.0.0.1"


class OidcProvider:
    """`start()`, then `user(...)` and `client(...)` to set it up; `url`
    and the endpoint properties for Fleet UI's settings; `stop()`."""

    def __init__(self, tmp: Path):
        self.tmp, self.port, self.proc = tmp, free_port(), None
        self.url = f"http://{HOST}:{self.port}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings", "PYTHONPATH": str(ROOT),
                    "OIDC_PROVIDER_DB": str(tmp / "provider.sqlite3"), "OIDC_PROVIDER_KEY": pem,
                    "OIDC_PROVIDER_ISSUER": self.issuer}

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def endpoints(self) -> dict[str, str]:
        """Fleet UI's OIDC settings for this provider."""
        return {"OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize/",
                "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token/",
                "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo/",
                "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/.well-known/jwks.json",
                "FLEET_OIDC_ISSUER": self.issuer}

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"provider {' '.join(args)} failed: {done.stderr[-2000:]}"
        return done.stdout

    def start(self) -> "OidcProvider":
        self.manage("migrate", "-v0")
        log = open(self.tmp / "provider.log", "w")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "django", "runserver", f"{HOST}:{self.port}",
                                      "--noreload", "--skip-checks"],
                                     cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._discovery, timeout=30, what=f"the OIDC provider on {self.url} (log: {log.name})")
        return self

    def _discovery(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def user(self, username: str, *groups: str, password: str = "") -> None:
        """Create or update a person at the provider with exactly `groups`."""
        self.manage("provider_user", username, *(["--password", password] if password else []),
                    "--groups", *groups)

    def client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.manage("provider_client", client_id, secret, redirect_uri)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
