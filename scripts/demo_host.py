"""What `make run HOST=...` needs to know about the address it serves on.

    python scripts/demo_host.py allowed-hosts 0.0.0.0:9000   # for ALLOWED_HOSTS
    python scripts/demo_host.py url 0.0.0.0:9000             # for the welcome lines

HOST is what `runserver` accepts: `ADDR:PORT`, `PORT`, or `[IPV6]:PORT`.
Standard library only: it runs before Django's settings are loaded (the
Makefile exports ALLOWED_HOSTS from it).
"""

import socket
import sys

LOCAL = ["localhost", "127.0.0.1", "[::1]"]
WILDCARDS = {"0.0.0.0", "::", "0"}  # runserver's "0" means 0.0.0.0


def split(host: str) -> tuple[str, str]:
    """(address, port) of a runserver address; the address is '' for a bare port."""
    if host.isdigit():
        return "", host
    address, _, port = host.rpartition(":")
    return address.strip("[]"), port or "8000"


def own_names() -> list[str]:
    """The names and addresses other machines may reach this one by."""
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        # Connecting a UDP socket sends nothing: it only picks the outgoing address.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            names.append(probe.getsockname()[0])
    except OSError:
        pass
    return names


def allowed_hosts(host: str) -> list[str]:
    """localhost always; the address served on; every name of this machine
    when serving on all addresses (0.0.0.0 or ::)."""
    address, _ = split(host)
    extra = own_names() if address in WILDCARDS else [f"[{address}]" if ":" in address else address]
    hosts = LOCAL + [name for name in extra if name]
    return list(dict.fromkeys(hosts))


def url(host: str) -> str:
    """The address to open in a browser."""
    address, port = split(host)
    if not address or address in WILDCARDS:
        shown = "127.0.0.1" if not address else socket.gethostname()
    else:
        shown = f"[{address}]" if ":" in address else address
    return f"http://{shown}:{port}/"


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("allowed-hosts", "url"):
        print(__doc__, file=sys.stderr)
        return 2
    print(",".join(allowed_hosts(argv[2])) if argv[1] == "allowed-hosts" else url(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
