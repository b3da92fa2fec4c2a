"""Collection settings for the whole checkout (pytest runs docstring examples in cosma/ as tests)."""

# A script the HiGHS backend runs in a process of its own: importing it would install its SIGINT handler
# in the test process, and it must never share a process with OR-Tools (see its module docstring).
collect_ignore = ["cosma/backends/highs_worker.py"]
