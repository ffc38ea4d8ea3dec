"""kstream's benchmark harness (issue 7). Not part of the kstream package; run ``make bench``.

Modules:
    harness   the orchestrator (``python -m bench``): broker, data, jobs, verification, table
    data      the synthetic event data set: generation, loading, its layout on the topic
    truth     independent plain-Python results of every job, computed from the generated data
    verify    read an output topic back and compare it with the truth
    floor     baseline: a bare confluent-kafka consume/decode/encode/produce loop (subprocess)
    quix_jobs baseline: W1/W2/W3 written idiomatically with Quix Streams (subprocess)
    kstream_timed  ``kstream`` CLI entry that also records the time of the first record
"""
