"""Run history: every session's records in a store (SQLite or PostgreSQL), a fingerprint
per record, and the verdict of a new record against the history of its comparable records.

- :mod:`.store`: the store (``open_store``), its schema and migrations;
- :mod:`.fingerprint`: what makes two records comparable;
- :mod:`.stats`: the single-value-vs-distribution test (no I/O);
- :mod:`.gate`: a new record judged against the store;
- :mod:`.ingest`: session records (or an old ``results.json``) as history records;
- :mod:`.results_file`: one ``results.json`` as a one-file history (``--mlperf-baseline``):
  found, loaded, pooled with others, saved;
- :mod:`.paired`: the paired A/B ratio's interval and decision (``--mlperf-ab``);
- :mod:`.changepoints`: change points of an item's series (``ruptures``), for the trend page.

No pytest here: the session and the ``pytest-mlperf history`` command use these modules.
"""
