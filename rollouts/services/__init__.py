"""Writes: every change a person or a controller makes goes through here.

Each service is one transaction that writes state and appends Event rows;
anything that must happen after commit (waking the engine) is registered
with transaction.on_commit.
"""
