"""State stores on RocksDB (the only package that imports rocksdict)."""
