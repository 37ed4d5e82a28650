-- Smaller compression buffers for the widest table. Writing a part holds one buffer of
-- max_compress_block_size per column stream (1 MiB by default), and `events` has one stream per typed
-- column and several per map: every insert and every merge held those buffers whatever the batch
-- size (BENCHMARKS.md, "End to end, 25 features"). A Float64 granule of 8,192 rows is 64 KiB, so
-- blocks stay the size they were (min_compress_block_size is 64 KiB): reads and compression are unchanged.
ALTER TABLE {db}.events MODIFY SETTING max_compress_block_size = 65536;
