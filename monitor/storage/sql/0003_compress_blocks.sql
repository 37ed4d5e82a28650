-- Smaller compression buffers for the widest table. Writing a part keeps one buffer of
-- max_compress_block_size per column stream (1 MiB by default); `events` has one stream per typed
-- column and several per map, so every insert and every merge held ~100 MiB of buffers whatever the
-- batch size (BENCHMARKS.md, "Ingestion memory"). A Float64 granule of 8,192 rows is 64 KiB, so
-- blocks stay the size they were (min_compress_block_size is 64 KiB): reads and compression are unchanged.
ALTER TABLE {db}.events MODIFY SETTING max_compress_block_size = 65536;
