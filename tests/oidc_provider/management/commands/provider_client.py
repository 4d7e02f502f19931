"""`provider_client CLIENT_ID SECRET REDIRECT_URI`: register the relying
party (Fleet UI) as a confidential authorization-code client with RS256 ID
tokens and no consent screen."""

from django.core.management.base import BaseCommand
from oauth2_provider.models import Application


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("secret")
        parser.add_argument("redirect_uri")

    def handle(self, *args, client_id, secret, redirect_uri, **options):
        Application.objects.filter(client_id=client_id).delete()
        Application.objects.create(
            name="Fleet UI", client_id=client_id, client_secret=secret, redirect_uris=redirect_uri,
            client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            algorithm=Application.RS256_ALGORITHM, skip_authorization=True)
