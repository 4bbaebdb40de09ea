"""Helpers every layer may use and that import nothing else of the harness: the user-error base
(errors), bounded reading of user files (bounded), atomic writes and the cache home (files), the
terminal console (ui), device and rank (runtime), fault points for the crash tests (faults) and
the JSON-schema check (schema_check)."""
