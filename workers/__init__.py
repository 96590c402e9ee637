"""Deploy folder: the Celery app module for ``celery -A workers.app worker|beat|flower``."""
