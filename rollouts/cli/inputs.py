"""Reading what a person typed: resource references, durations and files.

Everything here raises CliError (a client-side mistake, printed as
`error: <message>`) or an ApiError from the layer below; never anything else
for bad input.
"""

from pathlib import Path

from rollouts.api import durations
from rollouts.api.kinds import Kind, KindRegistry
from rollouts.api.manifests import parse_documents

from .errors import CliError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def parse_refs(registry: KindRegistry, args: list[str]) -> list[tuple[Kind, list[str]]]:
    """`KIND [NAME...]` or `KIND/NAME...` as (kind, names) groups, in order.

    kubectl refuses mixing the two forms, and so do we: `crp crp/x` is
    almost always a typo."""
    if not args:
        raise CliError(
            'you must specify the type of resource. Use "fleet api-resources" for the list of kinds.'
        )
    if "/" not in args[0]:
        if any("/" in arg for arg in args[1:]):
            raise CliError(
                "there is no need to specify a resource type as a separate argument when passing "
                "arguments in resource/name form (e.g. 'fleet get crp/<name>' instead of "
                "'fleet get crp crp/<name>')"
            )
        return [(registry.resolve(args[0]), list(args[1:]))]
    groups: list[tuple[Kind, list[str]]] = []
    for arg in args:
        kind_name, _, name = arg.partition("/")
        if not kind_name or not name or "/" in name:
            raise CliError(
                f"arguments in resource/name form must have a single resource and name: {arg!r}"
            )
        kind = registry.resolve(kind_name)
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(name)
        else:
            groups.append((kind, [name]))
    return groups


def single_ref(registry: KindRegistry, args: list[str], verb: str) -> tuple[Kind, str]:
    """Exactly one object: `KIND NAME` or `KIND/NAME`."""
    groups = parse_refs(registry, args)
    names = [name for _, group in groups for name in group]
    if len(names) != 1:
        raise CliError(f"{verb} needs exactly one object: KIND NAME or KIND/NAME")
    return groups[0][0], names[0]


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: 30s, 2m, 1m30s, 1.5h, 500ms."""
    try:
        return durations.parse_duration(text)
    except ValueError:
        raise CliError(
            f'invalid duration "{text}": use a number with a unit, e.g. 30s, 2m or 1m30s'
        ) from None


def read_text(path: str, stdin) -> str:
    """The text of a file, or of standard input for `-`."""
    if path == "-":
        return stdin.read()
    return _read(Path(path), path).decode("utf-8", errors="replace")


def read_manifests(paths: list[str], stdin) -> list[dict]:
    """Every document in every file (a directory: its manifest files, sorted).

    All files are parsed before anything is applied, so one broken file stops
    the whole command before it changes anything."""
    docs: list[dict] = []
    for path in paths:
        for source, content in _sources(path, stdin):
            docs += parse_documents(content, source)
    return docs


def _sources(path: str, stdin) -> list[tuple[str, str | bytes]]:
    if path == "-":
        return [("STDIN", stdin.read())]
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        return [(str(p), _read(p, str(p))) for p in files]
    return [(path, _read(target, path))]


def _read(target: Path, shown: str) -> bytes:
    if not target.exists():
        raise CliError(f'the path "{shown}" does not exist')
    try:
        return target.read_bytes()
    except IsADirectoryError:
        raise CliError(f'the path "{shown}" is a directory') from None
    except OSError as exc:
        raise CliError(f'cannot read "{shown}": {exc.strerror or exc}') from None
