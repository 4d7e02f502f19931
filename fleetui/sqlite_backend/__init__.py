"""Django's SQLite backend, with a writer that gives notice when it must wait (base.py)."""
