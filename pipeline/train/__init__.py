"""One run: data → network → module → trainer → fit → summary (run.py), and what it needs."""
