"""Credentials for the real clusters Fleet UI talks to, and what it mirrors.

A kubeconfig is write-only: an admin enters it once, it is stored encrypted
and nothing renders or logs it again. Only `kubeconfig()` decrypts it, for
rollouts.k8s to build a client.

Encryption is Fernet with keys from FLEET_CREDENTIALS_KEY, a comma-separated
list: the first key encrypts, every key decrypts (MultiFernet), so a key is
rotated by putting a new one first, re-encrypting (`fleet credentials
rotate`), then dropping the old one (docs/security.md). With DEBUG on and no
key set, the key is derived from SECRET_KEY (the demo); settings refuse that
outside DEBUG. A kubeconfig no listed key decrypts is unreadable: enter it again.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class UnreadableCredential(ValueError):
    """The stored kubeconfig cannot be decrypted with any configured key."""


def credential_keys() -> list[str]:
    """The configured keys, the encrypting one first."""
    configured = getattr(settings, "FLEET_CREDENTIALS_KEY", "") or ""
    return [key.strip() for key in configured.split(",") if key.strip()] or [settings.SECRET_KEY]


def _fernet_for(secret: str) -> Fernet:
    # Any string makes a key (a Fernet.generate_key() output, or an older
    # SECRET_KEY listed second to read rows encrypted before the split).
    digest = hashlib.sha256(f"fleetui-kubeconfig:{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _fernet() -> MultiFernet:
    return MultiFernet([_fernet_for(key) for key in credential_keys()])


class KubeconfigCredential(models.Model):
    """A kubeconfig (encrypted) and the context to use in it.

    name: how Fleet UI refers to the credential.
    context: the kubeconfig context; blank means its current-context.
    kubeconfig_encrypted: the Fernet token of the kubeconfig text.
    """

    name = models.CharField(max_length=253, unique=True)
    context = models.CharField(max_length=253, blank=True, default="")
    kubeconfig_encrypted = models.TextField(editable=False, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name

    def set_kubeconfig(self, text: str) -> None:
        """Store a new kubeconfig (the caller saves)."""
        self.kubeconfig_encrypted = _fernet().encrypt(text.encode()).decode()

    @property
    def has_kubeconfig(self) -> bool:
        return bool(self.kubeconfig_encrypted)

    def reencrypt(self) -> None:
        """Encrypt the stored kubeconfig again with the first key (the caller
        saves). UnreadableCredential when no configured key decrypts it."""
        try:
            self.kubeconfig_encrypted = _fernet().rotate(self.kubeconfig_encrypted.encode()).decode()
        except InvalidToken:
            raise UnreadableCredential(f"the kubeconfig of {self.name} cannot be decrypted with any "
                                       "FLEET_CREDENTIALS_KEY: enter it again") from None

    def kubeconfig(self) -> str:
        """The plain kubeconfig text. Hand it to rollouts.k8s, nowhere else."""
        if not self.kubeconfig_encrypted:
            raise UnreadableCredential(f"{self.name} has no kubeconfig: enter one")
        try:
            return _fernet().decrypt(self.kubeconfig_encrypted.encode()).decode()
        except InvalidToken:
            raise UnreadableCredential(
                f"the kubeconfig of {self.name} cannot be decrypted with any FLEET_CREDENTIALS_KEY "
                "(was the key changed?): enter it again"
            ) from None


class HubConnection(KubeconfigCredential):
    """A KubeFleet hub (or Azure Kubernetes Fleet Manager hub) that Fleet UI
    mirrors read-only and approves on.

    enabled: whether the sync keeps a session open to it.
    watch_state: per mirrored kind, {"version", "resourceVersion"} to watch
        from, or {"served": false} when the hub lacks the kind. Emptying a
        kind's entry makes the next session list it again.
    last_sync: the last time the hub answered a sync session.
    last_error/last_error_at: the last failure, one line, for the page.
    failures: failed sessions in a row; drives the backoff.
    backoff_until: no new session before this time.
    lease_until: a sync session owns the connection until then
        (compare-and-set, so two workers never sync one hub at once).
    warnings: objects the last session could not mirror, one line each.
    """

    enabled = models.BooleanField(default=True)
    watch_state = models.JSONField(default=dict, blank=True)
    last_sync = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta(KubeconfigCredential.Meta):
        pass

    @property
    def actor(self) -> str:
        """Who the audit log names for what the hub's own controllers did."""
        return f"hub:{self.name}"


class MemberCredential(KubeconfigCredential):
    """The kubeconfig of a real member cluster of Fleet UI's own hub. A
    MemberCluster names it in its `fleetui.io/kubeconfig-secret` annotation."""

    class Meta(KubeconfigCredential.Meta):
        pass


class MirroredObject(models.Model):
    """Marks a row of a fleet model as a read-only mirror of a hub's object.

    kind/namespace/name: the mirrored row (its model is the kind's).
    connection: the hub it comes from. PROTECT: remove a hub through
        rollouts.mirror.hub_connection_delete, which deletes its mirrors too.
    hub_uid/hub_resource_version: the hub's identity and version of the
        object as last mirrored.
    """

    connection = models.ForeignKey(HubConnection, on_delete=models.PROTECT, related_name="mirrored")
    kind = models.CharField(max_length=63)
    namespace = models.CharField(max_length=253, blank=True, default="")
    name = models.CharField(max_length=253)
    hub_uid = models.CharField(max_length=64, blank=True, default="")
    hub_resource_version = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "namespace", "name"], name="mirroredobject_unique")]
        indexes = [models.Index(fields=["connection", "kind"])]

    def __str__(self):
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind}/{where} from hub {self.connection_id}"
