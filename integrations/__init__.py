"""Integrations shipped with trigger-celery.

Importable as ``trigger_celery.integrations.<name>``.
"""
