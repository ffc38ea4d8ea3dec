"""kstream's benchmark harness (issue 7). Not part of the kstream package; run ``make bench``.

Modules:
    harness   the orchestrator (``python -m bench``): broker, peers, data, runs, table, results
    config    the harness's flags and their ``BENCH_*`` environment variables
    jobs      the jobs of the table: engine, workload, pipeline
    runner    one run of one job: command line per engine, measurement, verification
    measure   spawning job processes and measuring wall, CPU, peak RSS (``os.wait4``, /proc)
    summary   medians per job, the targets, the table (terminal and Markdown)
    data      the synthetic event data set and W5's keys: generation, loading, layout on the topic
    truth     independent plain-Python results of every job, computed from the generated data
    verify    read an output topic back and compare it with the truth
    peers     the peers' own virtualenvs (Quix Streams, PyFlink) and the Flink Kafka connector jar
    floor     baseline: a bare confluent-kafka consume/decode/encode/produce loop (subprocess)
    quix_jobs peer: W1/W2/W3 written idiomatically with Quix Streams (its venv's python)
    flink_jobs  peer: W1/W2 as Flink SQL jobs in PyFlink (its venv's python)
    kstream_timed  ``kstream`` CLI entry that also records the time of the first record
    report    the tables of a results file as Markdown
    profile_w2  W2 under py-spy or cProfile
"""
