"""kstream's command-line interface (installed as the ``kstream_cli`` package)."""
