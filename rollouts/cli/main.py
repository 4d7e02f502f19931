"""Running one `fleet` verb: dispatch, and the error contract.

Every refused request or client-side mistake is one line on stderr and exit
code 1; an unexpected exception is one line and exit code 2 (the traceback
only with --traceback); a database that cannot be reached is one line and
exit code 3. A person never sees a traceback for bad input. With Redis down
a verb still succeeds: its wake-up is logged once (rollouts.outages).
"""

from django.db import DatabaseError, InterfaceError, OperationalError

from rollouts import outages
from rollouts.api.errors import ApiError

from .commands import VERBS, Context
from .errors import CliError, format_error, one_line

DATABASE_UNAVAILABLE = 3  # exit code: the database could not be reached; nothing was saved


def run(options: dict, *, stdout, stderr, stdin) -> None:
    """Run the verb named by options["verb"]; exits via SystemExit on failure."""
    ctx = Context(options=options, out=stdout, err=stderr, stdin=stdin)
    try:
        VERBS[options["verb"]](ctx)
    except (ApiError, CliError) as exc:
        stderr.write(format_error(exc))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except (OperationalError, InterfaceError) as exc:
        if options.get("traceback"):
            raise
        if not outages.database_unreachable():
            stderr.write(_database_problem(exc))
            raise SystemExit(2) from None
        # Every verb writes in one transaction, which did not commit.
        stderr.write(f"error: database unavailable at {outages.database_location()} "
                     f"({outages.short_reason(exc)}): nothing was saved")
        raise SystemExit(DATABASE_UNAVAILABLE) from None
    except DatabaseError as exc:
        if options.get("traceback"):
            raise
        stderr.write(_database_problem(exc))
        raise SystemExit(2) from None
    except Exception as exc:
        if options.get("traceback"):
            raise
        stderr.write(format_error(exc))
        raise SystemExit(2) from None


def _database_problem(exc: DatabaseError) -> str:
    text = one_line(str(exc))
    # The usual first-run mistake: the tables are not there yet.
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"error: the database is not set up ({text}): run `python manage.py migrate` first"
    return format_error(exc)
