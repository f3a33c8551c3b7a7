# Stand-in for the harness's argument definitions (tests only). Its content tells
# pytest-mlperf which quick-run flag this harness version takes.
arguments = {"test_run": {"help": "shortened run: min_duration 60 s, min_query_count 1"}}
