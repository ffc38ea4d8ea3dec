"""The broker-free driver: run a pipeline on in-memory records, exactly as the runtime does.

Public API (``docs/testing.md``): :class:`PipelineDriver` and the :class:`OutputRecord` it
returns.
"""

from kstream.testing.driver import OutputRecord, PipelineDriver

__all__ = ["OutputRecord", "PipelineDriver"]
