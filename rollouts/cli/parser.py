"""The `fleet` command line: verbs, options and their help texts.

Options every verb accepts (--as, --traceback) are declared on each verb with
a SUPPRESS default, so `fleet --as alice get crp` and `fleet get crp --as
alice` both work and neither overwrites the other.
"""

import argparse

from django.core.management.base import CommandParser, DjangoHelpFormatter

MAIN_HELP = """\
A kubectl-like shell for the Fleet UI hub (placement.kubernetes-fleet.io/v1beta1).

Verbs:
  apply          create or update objects from YAML/JSON files
  get            list objects as tables, YAML, JSON or names
  delete         delete objects (with what Kubernetes' garbage collector does)
  patch          merge- or JSON-patch an object or its status
  label          add, change or remove labels (key=value, key-), as kubectl label
  annotate       add, change or remove annotations, as kubectl annotate
  approve        approve a ClusterApprovalRequest or ApprovalRequest
  reject         reject a stage gate with a reason: its run stops
  health         show (or --check now) a gate's health gate: Prometheus queries and results
  wait           wait for a condition or for deletion
  api-resources  list the kinds the hub serves and their short names
  demo           load the tutorial's demo fleet
  engine         run the rollout engine loop (and the KubeFleet hub syncs)
  serve          serve the web UI with the engine loop in the same process
  audit verify   check the audit log's hash chain; report the first broken link
  audit seal     seal events left unsealed too long (--stale), after looking at them
  hub            add, list or delete KubeFleet hub connections (mirrored read-only)
  kubeconfig     add, list or delete member cluster kubeconfigs
  policies       list the approval policies (strategy gates, placements, clusters)
  history        a placement's runs: snapshot, outcome, duration, approvers, rollbacks
  freeze         create, list or end freezes: no run starts a stage or cluster meanwhile
  credentials    rotate: re-encrypt stored kubeconfigs with the first FLEET_CREDENTIALS_KEY
  tokens         create, list or revoke a person's API tokens for kubectl (docs/kube-api.md)
  notifications  create, list, delete or test team notification channels; the delivery log
"""

MAIN_USAGE = "%(prog)s [--as USER] VERB [options]"

MAIN_EPILOG = """\
examples:
  python manage.py fleet demo
  python manage.py fleet apply -f crp.yaml
  python manage.py fleet get crp
  python manage.py fleet get clusterresourcesnapshots --show-labels
  python manage.py fleet get cm test-cm -n test-namespace --cluster member1 -o yaml
  python manage.py fleet label memberclusters member1 environment=prod --overwrite
  python manage.py fleet approve example-run-canary --message lgtm
  python manage.py fleet wait csur/example-run --for=condition=Succeeded --timeout=5m
  python manage.py fleet delete csur example-run
  python manage.py fleet audit verify

Run `python manage.py fleet VERB --help` for a verb's options.
"""


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option ordering, with descriptions and examples kept as written."""


class VerbParser(CommandParser):
    """A verb's parser. With `intermixed`, words after an option still count
    as positional arguments, as kubectl reads them (`fleet label memberclusters -l
    env=canary wave=1`); argparse alone stops filling a positional at the
    first option."""

    intermixed = False

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if self.intermixed:
            words = [x for x in extras if not x.startswith("-")]
            namespace.items = [*(getattr(namespace, "items", None) or []), *words]
            extras = [x for x in extras if x.startswith("-")]
        return namespace, extras


def add_verbs(parser) -> None:
    """Add the global options and every verb to the command's parser."""
    parser.add_argument("--as", dest="actor", metavar="USER", default=None, help=_AS_HELP)
    # The verbs are listed in MAIN_HELP, in a friendlier order than argparse's.
    # prog is explicit: argparse would otherwise build it from the custom usage line.
    verbs = parser.add_subparsers(
        dest="verb", metavar="VERB", help=argparse.SUPPRESS, prog=parser.prog, parser_class=VerbParser
    )
    common = _common_options()
    for add in (_apply, _get, _delete, _patch, _label, _annotate, _approve, _reject, _health, _wait, _api_resources, _demo,
                _engine, _serve, _audit, _hub, _kubeconfig, _policies, _history, _credentials, _freeze, _notifications,
                _tokens):
        add(verbs, common)


_AS_HELP = "the user the audit log records for this change (default: your OS user name)"


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--as", dest="actor", metavar="USER", default=argparse.SUPPRESS, help=_AS_HELP
    )
    common.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an internal error",
    )
    return common


def _verb(verbs, name: str, common, summary: str, examples: str, description: str = ""):
    return verbs.add_parser(
        name,
        parents=[common],
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog="examples (fleet = python manage.py fleet):\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _namespace(
    parser, help_text: str = "the namespace of namespaced kinds (default: default)"
) -> None:
    parser.add_argument("-n", "--namespace", default=None, metavar="NS", help=help_text)


def _apply(verbs, common) -> None:
    p = _verb(
        verbs,
        "apply",
        common,
        "create or update objects from YAML/JSON files",
        "  fleet apply -f crp.yaml\n  fleet apply -f manifests/\n  cat run.yaml | fleet apply -f -\n"
        "  fleet apply --dry-run=server -f run.yaml\n",
        "Create or update every object in the files, all or nothing: if one document is\n"
        "invalid, nothing is applied. Prints `kind.group/name created|configured|unchanged`.\n"
        "With --dry-run=server everything is validated and nothing is changed; a new\n"
        "update run also prints its plan: the clusters of each stage in update order,\n"
        "the scheduled clusters in no stage and what would make initialization fail.",
    )
    p.add_argument(
        "--dry-run",
        choices=["none", "server"],
        default="none",
        help="server: validate and show what would happen (and each new run's plan) without changing anything",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE",
        help="a file, a directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable",
    )
    _namespace(p, "the namespace for documents that do not name one (default: default)")


def _get(verbs, common) -> None:
    p = _verb(
        verbs,
        "get",
        common,
        "list objects as tables, YAML, JSON or names",
        "  fleet get crp\n  fleet get crp example-placement -o yaml\n  fleet get crs --show-labels\n"
        "  fleet get csur/example-run careq/example-run-canary\n  fleet get cm -A -l app=web\n"
        "  fleet get cm test-cm -n test-namespace --cluster member1 -o yaml\n",
        "List hub objects of a kind (by kind, plural, singular or short name), or the named ones.\n"
        "With --cluster, list what that member cluster holds instead.",
    )
    p.add_argument(
        "resources", nargs="+", metavar="RESOURCE", help="KIND [NAME...] or KIND/NAME..."
    )
    _namespace(p)
    p.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="list namespaced kinds in every namespace",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=["yaml", "json", "wide", "name"],
        default="",
        help="output format (default: a table)",
    )
    p.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    p.add_argument(
        "-l",
        "--selector",
        default="",
        metavar="SELECTOR",
        help="label selector, e.g. 'env=canary,order!=1'",
    )
    p.add_argument(
        "--cluster", default="", metavar="MEMBER", help="show the objects on this member cluster"
    )


def _delete(verbs, common) -> None:
    p = _verb(
        verbs,
        "delete",
        common,
        "delete objects (with what Kubernetes' garbage collector does)",
        "  fleet delete csur example-run example-run-2\n  fleet delete crp/example-placement\n"
        "  fleet delete -f crp.yaml\n",
        "Delete objects. A placement takes its snapshots and bindings with it, a namespace its\n"
        "contents, an update run its approval requests.",
    )
    p.add_argument("resources", nargs="*", metavar="RESOURCE", help="KIND NAME... or KIND/NAME...")
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE",
        help="delete the objects in these files",
    )
    _namespace(p)
    p.add_argument(
        "--ignore-not-found", action="store_true", help="treat a missing object as deleted"
    )


def _label(verbs, common) -> None:
    p = _verb(
        verbs,
        "label",
        common,
        "add, change or remove labels (key=value, key-), as kubectl label",
        "  fleet label memberclusters member1 environment=prod\n"
        "  fleet label memberclusters member1 environment=canary --overwrite\n"
        "  fleet label memberclusters member1 environment-\n"
        "  fleet label memberclusters -l environment=canary order=1\n"
        "  fleet label memberclusters --all team=payments\n",
        "Set `key=value` or remove `key-` labels on the named objects, or on those -l selects\n"
        "(--all: every object of the kind). Changing a value needs --overwrite. Prints\n"
        "`kind.group/name labeled`, `unlabeled`, or `not labeled` when nothing changed.",
    )
    _metadata_options(p, "label")


def _annotate(verbs, common) -> None:
    p = _verb(
        verbs,
        "annotate",
        common,
        "add, change or remove annotations, as kubectl annotate",
        "  fleet annotate crp example-placement owner=team-a\n"
        "  fleet annotate crp example-placement owner=team-b --overwrite\n"
        "  fleet annotate crp example-placement owner-\n",
        "Set `key=value` or remove `key-` annotations on the named objects, or on those -l\n"
        "selects (--all: every object of the kind). Changing a value needs --overwrite.\n"
        "Prints `kind.group/name annotated`.",
    )
    _metadata_options(p, "annotation")


def _metadata_options(p, noun: str) -> None:
    p.intermixed = True
    # Not "args": Django's call_command takes that name for itself.
    p.add_argument(
        "items",
        nargs="+",
        metavar="ARG",
        help=f"KIND NAME... or KIND/NAME..., then KEY=VALUE to set or KEY- to remove a {noun}",
    )
    _namespace(p)
    p.add_argument(
        "-l", "--selector", default="", metavar="SELECTOR", help="change the objects this label selector matches"
    )
    p.add_argument("--all", action="store_true", help="change every object of the kind (in the namespace)")
    p.add_argument("--overwrite", action="store_true", help=f"allow changing a {noun} that already has a value")
    p.add_argument(
        "--resource-version",
        default="",
        metavar="VERSION",
        help="change the object only if it is still at this resourceVersion (one object only)",
    )


def _patch(verbs, common) -> None:
    p = _verb(
        verbs,
        "patch",
        common,
        "merge- or JSON-patch an object or its status",
        '  fleet patch csur example-run --type merge -p \'{"spec": {"state": "Stop"}}\'\n'
        "  fleet patch careq example-run-canary --type merge --subresource status --patch-file approval.json\n"
        '  fleet patch crp example-placement --type json -p \'[{"op": "add", "path": "/metadata/labels/team", "value": "a"}]\'\n',
        "Patch one object. The patch may be JSON or YAML. Prints `kind.group/name patched`, or\n"
        "`patched (no change)` when the object already said so.",
    )
    p.add_argument("resources", nargs="+", metavar="RESOURCE", help="KIND NAME or KIND/NAME")
    _namespace(p)
    p.add_argument(
        "--type",
        choices=["merge", "json"],
        default="merge",
        help="merge (RFC 7386, default) or json (RFC 6902)",
    )
    p.add_argument(
        "--subresource", choices=["status"], default=None, help="patch the status subresource"
    )
    p.add_argument("-p", "--patch", default=None, metavar="PATCH", help="the patch text")
    p.add_argument("--patch-file", default=None, metavar="FILE", help="a file holding the patch")


def _approve(verbs, common) -> None:
    p = _verb(
        verbs,
        "approve",
        common,
        "approve a ClusterApprovalRequest or ApprovalRequest",
        "  fleet approve example-run-canary --message lgtm\n  fleet approve careq/example-run-canary\n"
        "  fleet approve areq/example-run-canary -n team-a\n  fleet --as alice approve example-run-canary\n",
        "Set Approved=True on an approval request, as `kubectl fleet approve` does. A bare NAME is\n"
        "a ClusterApprovalRequest, or an ApprovalRequest when -n is given. Approving an approved\n"
        "request changes nothing and says who approved it and when.",
    )
    p.add_argument("resources", nargs="+", metavar="REQUEST", help="NAME, careq/NAME or areq/NAME")
    _namespace(p, "approve the ApprovalRequest in this namespace")
    p.add_argument("--message", default="", help="the message of the Approved condition")
    p.add_argument("--break-glass", action="store_true",
                   help="during a freeze: ask for (with --reason) or, as a second person, confirm a break-glass "
                        "approval (docs/freezes.md)")
    p.add_argument("--reason", default="", help="why the gate cannot wait for the freeze to end (with --break-glass)")


def _reject(verbs, common) -> None:
    p = _verb(
        verbs,
        "reject",
        common,
        "reject a stage gate with a reason: its run stops",
        "  fleet reject example-run-canary --reason \"error rate up on member3\"\n"
        "  fleet reject areq/example-run-canary -n team-a --reason \"wrong snapshot\"\n",
        "Record a rejection of the gate (with the reason, on the run's timeline and in the audit\n"
        "log) and stop its run (spec.state Stop). The request stays unapproved: resuming the run\n"
        "waits at the same gate again. A bare NAME is a ClusterApprovalRequest, or an\n"
        "ApprovalRequest when -n is given. An approved request cannot be rejected.",
    )
    p.add_argument("resources", nargs="+", metavar="REQUEST", help="NAME, careq/NAME or areq/NAME")
    _namespace(p, "reject the ApprovalRequest in this namespace")
    p.add_argument("--reason", required=True, help="why the run must stop (required)")


def _health(verbs, common) -> None:
    p = _verb(
        verbs,
        "health",
        common,
        "show a gate's health gate: each Prometheus query, its value and result",
        "  fleet health example-run-canary\n"
        "  fleet health example-run-canary --check\n",
        "Show the last check of the gate's health gate (the strategy's fleetui.io/health-gate\n"
        "annotation, docs/health-gates.md): its verdict (soaking, healthy, failing, unknown), its\n"
        "mode, and per query the worst value now, the healthy side of the threshold,\n"
        "pass/fail/unknown and the link to Prometheus' graph. --check checks it now when it is\n"
        "due (and acts as its mode says, as system:health-gate). A bare NAME is a\n"
        "ClusterApprovalRequest, or an ApprovalRequest when -n is given.",
    )
    p.add_argument("request", metavar="REQUEST", help="the approval request's name")
    _namespace(p, "the ApprovalRequest's namespace")
    p.add_argument("--check", action="store_true", help="check the gate now (when due) before showing it")


def _wait(verbs, common) -> None:
    p = _verb(
        verbs,
        "wait",
        common,
        "wait for a condition or for deletion",
        "  fleet wait csur/example-run --for=condition=Succeeded --timeout=10m\n"
        "  fleet wait careq/example-run-canary --for=condition=Approved\n"
        "  fleet wait crp/example-placement --for=condition=ClusterResourcePlacementAvailable=False\n"
        "  fleet wait csur/example-run --for=delete\n"
        "  fleet wait careq/example-run-canary --for=create --timeout=5m\n",
        "Wait until each object has the condition (STATUS defaults to True; a condition observed\n"
        "for an older generation does not count), is deleted, or (--for=create) exists.\n"
        "Exits 1 on timeout.",
    )
    p.add_argument("resources", nargs="+", metavar="RESOURCE", help="KIND/NAME... or KIND NAME...")
    _namespace(p)
    p.add_argument(
        "--for",
        dest="for_",
        required=True,
        metavar="condition=TYPE[=STATUS]|delete|create",
        help="what to wait for",
    )
    p.add_argument(
        "--timeout",
        default="30s",
        metavar="DURATION",
        help="how long to wait, e.g. 30s, 2m, 1m30s (default 30s)",
    )


def _api_resources(verbs, common) -> None:
    _verb(
        verbs,
        "api-resources",
        common,
        "list the kinds the hub serves and their short names",
        "  fleet api-resources\n",
    )


def _demo(verbs, common) -> None:
    _verb(
        verbs,
        "demo",
        common,
        "load the tutorial's demo fleet",
        "  fleet demo\n",
        "Apply the tutorial's fleet: member1..3 with their labels, namespace test-namespace with\n"
        "ConfigMap test-cm, the example-placement CRP and the example-strategy ClusterStagedUpdateStrategy.\n"
        "Safe to re-run: unchanged objects say `unchanged`.",
    )


def _engine(verbs, common) -> None:
    p = _verb(
        verbs,
        "engine",
        common,
        "run the rollout engine loop (and the KubeFleet hub syncs)",
        "  fleet engine\n  fleet engine --once\n  fleet engine --interval 5\n",
        "Run the engine that drives update runs: it wakes on every change and makes a\n"
        "safety-net pass over active runs every --interval seconds. Beside it, a thread keeps\n"
        "every KubeFleet hub connection mirrored (not with --once).",
    )
    p.add_argument(
        "--once", action="store_true", help="make one pass over the active runs, then exit"
    )
    p.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between safety-net passes",
    )


def _serve(verbs, common) -> None:
    p = _verb(
        verbs,
        "serve",
        common,
        "serve the web UI with the engine loop in the same process",
        "  fleet serve\n  fleet serve 0.0.0.0:8000\n"
        "  fleet serve 127.0.0.1:8443 --tls-cert var/tls/cert.pem --tls-key var/tls/key.pem\n",
        "The embedded mode: the ASGI server (Django's runserver on daphne, no autoreload),\n"
        "the rollout engine loop and the KubeFleet hub syncs in one process, nothing else\n"
        "needed. Stop it with Ctrl-C.",
    )
    p.add_argument("addrport", nargs="?", default="127.0.0.1:8000", metavar="ADDR:PORT")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM), e.g. a self-signed "
                   "one: kubectl sends API tokens only over HTTPS (docs/kube-api.md)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")


def _audit(verbs, common) -> None:
    p = _verb(
        verbs,
        "audit",
        common,
        "check the audit log's hash chain",
        "  fleet audit verify\n  fleet audit seal --stale\n",
        "`audit verify` seals recent events not yet in the chain, then walks the whole chain\n"
        "and reports the first broken link (a row changed, missing, or linked to the wrong\n"
        "row), events left unsealed longer than FLEET_AUDIT_SEAL_WITHIN_SECONDS (it does not\n"
        "seal those), and time going backwards. Exit code 0 with `audit log intact: N events,\n"
        "head HASH`, 1 otherwise. Keep the head somewhere else: removing the newest rows is\n"
        "only seen against an older head. `audit seal --stale` seals the events left unsealed.",
    )
    p.add_argument("action", choices=["verify", "seal"], metavar="verify|seal", help="the audit action")
    p.add_argument("--stale", action="store_true", help="with seal: also events left unsealed too long")


def _policies(verbs, common) -> None:
    _verb(
        verbs,
        "policies",
        common,
        "list the approval policies",
        "  fleet policies\n",
        "Every approval policy: a gate of a strategy (from its annotation or the admin), a\n"
        "placement, or member clusters by label selector, with its groups, quorum and four-eyes.\n"
        "Policies on placements and clusters are made in the admin (docs/approval-policies.md).",
    )


def _credential_verb(verbs, common, name: str, summary: str, examples: str, description: str) -> None:
    p = _verb(verbs, name, common, summary, examples, description)
    p.add_argument("action", choices=["add", "list", "delete"], metavar="add|list|delete")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--kubeconfig", metavar="FILE", help="the kubeconfig to store (- for stdin); with add, "
                   "required for a new NAME, and left out to keep the stored one")
    p.add_argument("--context", default=None, metavar="CONTEXT",
                   help="the kubeconfig context to use (default: its current-context)")


def _hub(verbs, common) -> None:
    _credential_verb(
        verbs, common, "hub",
        "add, list or delete KubeFleet hub connections",
        "  fleet hub add prod-hub --kubeconfig hub.kubeconfig --context fleet-admin\n"
        "  fleet hub list\n  fleet hub delete prod-hub\n",
        "A hub connection mirrors an existing KubeFleet or Azure Kubernetes Fleet Manager hub\n"
        "read-only (docs/real-clusters.md); approvals, Stop and Resume are sent to it. The\n"
        "kubeconfig is checked, stored encrypted and never shown again. `add` on an existing\n"
        "NAME replaces its kubeconfig or context. `delete` removes everything mirrored from it.",
    )


def _kubeconfig(verbs, common) -> None:
    _credential_verb(
        verbs, common, "kubeconfig",
        "add, list or delete member cluster kubeconfigs",
        "  fleet kubeconfig add member1-kubeconfig --kubeconfig member1.kubeconfig\n"
        "  fleet kubeconfig list\n  fleet kubeconfig delete member1-kubeconfig\n",
        "A member cluster annotated `fleetui.io/kubeconfig-secret: NAME` receives its snapshots\n"
        "by server-side apply through this kubeconfig instead of being simulated\n"
        "(docs/real-clusters.md). Stored encrypted and never shown again.",
    )


def _history(verbs, common) -> None:
    p = _verb(
        verbs,
        "history",
        common,
        "list a placement's runs: snapshot, outcome, duration, approvers, rollbacks",
        "  fleet history example-placement\n  fleet history web -n team-a\n",
        "The placement's last 30 runs, newest first, as its history page shows them: the\n"
        "snapshot index (a rollback when lower than the run before it), the outcome, when it\n"
        "started, how long it took (an active run: so far, and its estimate of what is left),\n"
        "who approved each gate, and the stages that took much longer than usual: over twice\n"
        "the median of the earlier runs and at least a minute longer (docs/eta.md).",
    )
    p.add_argument("placement", help="the placement's name")
    _namespace(p, "the namespace of a namespaced ResourcePlacement (default: a ClusterResourcePlacement)")


def _credentials(verbs, common) -> None:
    p = _verb(
        verbs, "credentials", common,
        "re-encrypt stored kubeconfigs with the first FLEET_CREDENTIALS_KEY",
        "  FLEET_CREDENTIALS_KEY=NEW,OLD fleet credentials rotate\n",
        "FLEET_CREDENTIALS_KEY lists keys, comma-separated: the first encrypts, every one\n"
        "decrypts. To rotate: put a new key first, restart, run `credentials rotate` (every\n"
        "hub connection and member kubeconfig is re-encrypted with the first key and audited),\n"
        "then remove the old key (docs/security.md). Exit code 1 when a kubeconfig is\n"
        "unreadable with every key: enter it again.",
    )
    p.add_argument("action", choices=["rotate"], metavar="rotate", help="the credentials action (rotate)")


def _tokens(verbs, common) -> None:
    p = _verb(
        verbs, "tokens", common,
        "create, list or revoke a person's API tokens for kubectl",
        "  fleet tokens create laptop --user alice --kubeconfig alice.kubeconfig\n"
        "  fleet tokens list --user alice\n  fleet tokens revoke laptop --user alice\n",
        "A token lets kubectl (or any Kubernetes client) act as its user on the hub's\n"
        "Kubernetes API, with that user's role (docs/kube-api.md). It is shown once (or\n"
        "written into --kubeconfig FILE) and stored only as a hash; revoke it when lost.\n"
        "kubectl sends tokens only over https: --server must be an https URL (default:\n"
        "FLEET_API_URL, else FLEET_BASE_URL).",
    )
    p.add_argument("action", choices=["create", "list", "revoke"], metavar="create|list|revoke")
    p.add_argument("name", nargs="?", default="", metavar="NAME", help="the token's name (create, revoke)")
    p.add_argument("--user", default="", help="whose tokens (default: --as, else your OS user name)")
    p.add_argument("--kubeconfig", metavar="FILE", help="create: write a kubeconfig with the token to FILE")
    p.add_argument("--server", default="", help="create: the https URL kubectl connects to")


def _freeze(verbs, common) -> None:
    p = _verb(
        verbs,
        "freeze",
        common,
        "create, list or end freezes: no run starts a stage or cluster meanwhile",
        "  fleet freeze create xmas --reason \"holidays\" --until 2027-01-04T06:00:00Z\n"
        "  fleet freeze create incident-42 --reason \"payments outage\" -l env=prod\n"
        "  fleet freeze create weekends --reason \"no weekend deploys\" \\\n"
        "      --windows \"Fri 18:00-Mon 06:00\" --time-zone Europe/Berlin\n"
        "  fleet freeze list --all\n  fleet freeze end incident-42\n",
        "While a freeze holds, no run starts a new stage or cluster and no gate can be approved\n"
        "(clusters in flight finish; new runs are created and wait); every page shows a banner.\n"
        "A freeze holds from --from (default: now) until --until or for --for (default: until\n"
        "`freeze end`); with --windows only inside those weekly windows, wall clock in\n"
        "--time-zone. -l limits it to placements with matching labels. Mirrored hubs' matching\n"
        "runs are stopped on the hub and resumed afterwards. A gate may still be opened by a\n"
        "break-glass approval of two people (`fleet approve NAME --break-glass --reason ...`).\n"
        "Docs: docs/freezes.md.",
    )
    p.add_argument("action", choices=["create", "list", "end"], metavar="create|list|end")
    p.add_argument("name", nargs="?", metavar="NAME", help="the freeze: lowercase letters, digits and '-'")
    p.add_argument("--reason", default="", help="why the line stops, shown on every page (create: required)")
    p.add_argument("--from", dest="from_", metavar="TIME",
                   help="when it starts holding: 2026-12-24T18:00:00Z or '2026-12-24 18:00' in --time-zone "
                        "(default: now)")
    p.add_argument("--until", metavar="TIME", help="when it stops holding by itself (default: when ended)")
    p.add_argument("--for", dest="for_", metavar="DURATION", help="how long it holds from its start, e.g. 8h, 90m")
    p.add_argument("--windows", default="", metavar="WINDOWS",
                   help="recurring: weekly windows it holds in, e.g. 'Sat 00:00-Mon 06:00, Wed 12:00-Wed 13:00'")
    p.add_argument("--time-zone", default="UTC", metavar="ZONE",
                   help="IANA time zone of --windows and of times without an offset (default: UTC)")
    p.add_argument("-l", "--selector", default="", metavar="SELECTOR",
                   help="only placements whose labels match, e.g. env=prod (default: every placement)")
    p.add_argument("--all", action="store_true", help="list: ended and expired freezes too")


def _notifications(verbs, common) -> None:
    p = _verb(
        verbs, "notifications", common,
        "create, list, delete or test team notification channels; see and resend deliveries",
        "  fleet notifications create releases --channel slack --target https://hooks.slack.com/services/…\n"
        "  fleet notifications create ci --target https://ci.example.com/fleet --events gate-opened,run-failed\n"
        "  fleet notifications create oncall --channel email --target oncall@example.com --selector env=prod\n"
        "  fleet notifications list\n  fleet notifications test releases\n"
        "  fleet notifications deliveries releases\n  fleet notifications resend 42\n"
        "  fleet notifications delete releases\n",
        "Team channels (shared, owned by nobody) told of gates opening (and who may approve),\n"
        "approvals and rejections, failing clusters, runs stuck, failed, stopped or succeeded,\n"
        "and freezes; people subscribe for themselves on their Notifications page. A webhook's\n"
        "signing secret is printed once by create. Events: gate-opened, approved, rejected,\n"
        "cluster-failing, run-stuck, run-failed, run-stopped, run-succeeded, freeze-started,\n"
        "freeze-ended (default: all). `deliveries` shows the latest 50 (of NAME, or all);\n"
        "`resend ID` sends one again. docs/notifications.md has the payloads and signatures.",
    )
    p.add_argument("action", choices=["create", "list", "delete", "test", "deliveries", "resend"],
                   metavar="create|list|delete|test|deliveries|resend")
    p.add_argument("name", nargs="?", metavar="NAME", help="the channel (resend: the delivery ID)")
    p.add_argument("--channel", choices=["webhook", "slack", "teams", "email"], default="webhook",
                   help="with create: how to send (default: webhook)")
    p.add_argument("--target", metavar="URL|ADDRESS", help="with create: the incoming-webhook URL or email address")
    p.add_argument("--placement", metavar="NAME", help="with create: only events of this placement")
    p.add_argument("--selector", metavar="SELECTOR", help="with create: only placements whose labels match")
    p.add_argument("--run", metavar="NAME", help="with create: only events of this run")
    p.add_argument("--events", metavar="KIND,…", help="with create: only these event kinds (default: all)")
