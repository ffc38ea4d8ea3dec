"""The safe expression language and user-defined Python functions."""
