"""``python -m trigger_celery.cli``: the ``trigger-celery`` command."""

from trigger_celery.cli import main

main()
