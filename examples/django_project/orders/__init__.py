"""A Django app with a model and a task module found by autodiscover_tasks()."""
