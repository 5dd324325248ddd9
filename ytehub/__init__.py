"""ytehub — smart-health data platform for a provincial Department of Health."""

__version__ = "0.1.0"
