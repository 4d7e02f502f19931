"""The layers point one way (docs/architecture.md): a module imports only its
own layer or the layers below it, no two modules import each other in a
circle, and no import hides inside a function to dodge one.

Read from the source with `ast`, function-local imports included, as
../shared/tools/import_cycles.py reads it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom. A module belongs to the layer of its longest matching name.
LAYERS = [
    ("entry points", [
        "fleetui", "rollouts.views", "rollouts.cli", "rollouts.consumers", "rollouts.routing", "rollouts.tasks",
        "rollouts.tasks_k8s", "rollouts.tasks_health", "rollouts.admin", "rollouts.admin_base", "rollouts.admin_policies",
        "rollouts.admin_freezes", "rollouts.admin_notifications",
        "rollouts.mirror.admin", "rollouts.management", "rollouts.urls", "rollouts.apps", "rollouts.signals",
        "rollouts.templatetags", "rollouts.demo", "rollouts.demo_users", "rollouts.auth_backends",
        "rollouts.current_request", "rollouts.sessions", "rollouts.kubeapi",
    ]),
    ("reactions and loops", [
        "rollouts.broadcast", "rollouts.fragments", "rollouts.fragment_memory", "rollouts.notifier", "rollouts.engine.loop", "rollouts.engine.wakeup", "rollouts.mirror.sync",
    ]),
    ("services and selectors", [
        "rollouts.services", "rollouts.selectors", "rollouts.engine.runner", "rollouts.engine.actions",
        "rollouts.engine.timeline",
        "rollouts.members.agent", "rollouts.mirror", "rollouts.roles",
    ]),
    ("engine, controllers, api", [
        "rollouts.engine", "rollouts.controllers", "rollouts.api", "rollouts.members", "rollouts.mirror.kinds",
        "rollouts.mirror.marks", "rollouts.k8s", "rollouts.kubeconfig", "rollouts.sso", "rollouts.prometheus",
    ]),
    ("models", [
        "rollouts", "rollouts.models", "rollouts.changes", "rollouts.clock", "rollouts.conditions",
        "rollouts.k8s_errors", "rollouts.metrics", "rollouts.outages", "rollouts.freeze_windows",
    ]),
]

# Imports inside a function that are there for a reason other than a cycle.
LOCAL_IMPORTS_ALLOWED = {
    # Django: the app registry must be ready before the subscribers load models.
    ("rollouts.apps", "rollouts.broadcast"), ("rollouts.apps", "rollouts.changes"),
    ("rollouts.apps", "rollouts.signals"), ("rollouts.apps", "rollouts.engine.wakeup"),
    ("rollouts.apps", "rollouts.services.audit"), ("rollouts.apps", "rollouts.notifier"),
    # The official kubernetes client costs ~0.4 s to import: only where a real cluster is used.
    ("rollouts.members", "rollouts.members.kubernetes"),
    # Each connector implements the package's MemberConnector interface.
    ("rollouts.members", "rollouts.members.simulated"),
    # `fleet` verbs and the admin's kubeconfig forms load what only they need (the hub client) (engine loop, hub sessions, the demo) on use.
    ("rollouts.cli.commands", "rollouts.demo"), ("rollouts.cli.commands", "rollouts.engine.loop"),
    ("rollouts.cli.commands", "rollouts.mirror"), ("rollouts.cli.commands", "rollouts.engine.wakeup"),
    ("rollouts.cli.credentials", "rollouts.mirror.actions"), ("rollouts.mirror.admin", "rollouts.mirror.actions"),
}


def modules() -> dict[str, Path]:
    found = {}
    for package in ("rollouts", "fleetui"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def layer_of(module: str) -> int:
    best, level = "", None
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, index
    assert level is not None, f"{module} is in no layer: add it to LAYERS"
    return level


def imports(known: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """(importer, imported, inside a function) for every import of our modules."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for module, path in known.items():
        tree = ast.parse(path.read_text())
        local = {id(node) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for node in ast.walk(func) if isinstance(node, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names]  # a name, or a module
            else:
                continue
            for target in {resolve(name) for name in names} - {None, module}:
                if not module.startswith(target + "."):  # a package's own __init__
                    edges.append((module, target, id(node) in local))
    return edges


def test_every_import_points_to_its_own_layer_or_below():
    known = modules()
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, b, _local in imports(known) if layer_of(b) < layer_of(a)]
    assert upward == []


def test_no_import_hides_in_a_function_without_a_reason():
    hidden = sorted({(a, b) for a, b, local in imports(modules()) if local} - LOCAL_IMPORTS_ALLOWED)
    assert hidden == []


def test_no_modules_import_each_other_in_a_circle():
    known = modules()
    graph = {module: set() for module in known}
    for a, b, _local in imports(known):
        graph[a].add(b)
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
