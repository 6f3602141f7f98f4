"""The HTTP API (`longshore api`): IronWorker's API v2 for IronWorker's own clients (`ironworker.py`), over
the same service layer as the CLI; each request acts for the project its token belongs to."""
