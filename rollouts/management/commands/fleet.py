"""`python manage.py fleet ...`: a kubectl-like shell for the hub.

Thin on purpose: the verbs live in rollouts.cli.commands, the options in
rollouts.cli.parser, the error contract in rollouts.cli.main.
"""

import sys

from django.core.management.base import BaseCommand

from rollouts.cli import main, parser


class Command(BaseCommand):
    help = parser.MAIN_HELP
    # A CLI people run many times a minute: skip Django's system checks.
    requires_system_checks = []
    # Tests pass a StringIO as stdin for `apply -f -`.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", parser.HelpFormatter)
        kwargs.setdefault("epilog", parser.MAIN_EPILOG)
        kwargs.setdefault("usage", parser.MAIN_USAGE)
        self._parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self._parser

    def add_arguments(self, command_parser):
        parser.add_verbs(command_parser)

    def handle(self, *args, **options):
        if not options.get("verb"):
            self.stdout.write(self._parser.format_help())
            return
        main.run(
            options, stdout=self.stdout, stderr=self.stderr, stdin=options.get("stdin") or sys.stdin
        )
