"""Thirty wrong passwords for one user at the same instant, on real
PostgreSQL: the login limit's check and count must be one step, or every
attempt passes the check before the first failure is counted.

Each scenario runs in a child process against a fresh database (as
tests/test_approval_concurrency.py does): 30 threads, each with its own
database connection and test client, meet at a barrier and post a wrong
password to the login form. The child counts how many of them reached the
password check (ModelBackend.authenticate) and prints the status codes.
"""


import pytest

from .real_services import postgres_env, shell_json

pytestmark = pytest.mark.slow

LIMIT = 5
ATTEMPTS = 30

SCRIPT = r"""
import json, sys, threading
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.test import Client
from rollouts.roles import VIEWERS, user_create

attempts, same_address, url = int(sys.argv[1]), sys.argv[2] == "same", sys.argv[3]
user_create(username="vera", role=VIEWERS, password="s3cret-pass-for-vera")
checked, lock = [], threading.Lock()
authenticate = ModelBackend.authenticate

def counting(self, request, username=None, password=None, **kwargs):
    with lock:
        checked.append(username)
    return authenticate(self, request, username=username, password=password, **kwargs)

ModelBackend.authenticate = counting
barrier, statuses = threading.Barrier(attempts), []

def attempt(i):
    address = "10.9.8.7" if same_address else f"10.0.{i // 250}.{i % 250 + 1}"
    client = Client(REMOTE_ADDR=address, HTTP_HOST="localhost")
    try:
        barrier.wait()
        response = client.post(url, {"username": "vera", "password": f"wrong-{i}"})
        with lock:
            statuses.append(response.status_code)
    finally:
        connection.close()

threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"checked": len(checked), "statuses": sorted(statuses)}))
"""


@pytest.fixture
def database():
    with postgres_env(DEBUG="true", FLEET_LOGIN_MAX_FAILURES=str(LIMIT), FLEET_LOGIN_WINDOW_MINUTES="15") as env:
        yield env


def storm(env: dict, *, same_address: bool, url: str = "/accounts/login/") -> dict:
    return shell_json(env, SCRIPT, ["storm", str(ATTEMPTS), "same" if same_address else "many", url], timeout=600)


def test_thirty_parallel_wrong_passwords_for_one_user_check_at_most_the_limit(database):
    result = storm(database, same_address=False)
    assert result["checked"] <= LIMIT
    assert result["statuses"].count(429) >= ATTEMPTS - LIMIT
    assert set(result["statuses"]) <= {200, 429}


def test_thirty_parallel_wrong_passwords_from_one_address_check_at_most_the_limit(database):
    result = storm(database, same_address=True)
    assert result["checked"] <= LIMIT
    assert result["statuses"].count(429) >= ATTEMPTS - LIMIT


def test_the_admin_login_holds_the_same_limit_under_a_storm(database):
    result = storm(database, same_address=False, url="/admin/login/")
    assert result["checked"] <= LIMIT
    assert len(result["statuses"]) == ATTEMPTS
