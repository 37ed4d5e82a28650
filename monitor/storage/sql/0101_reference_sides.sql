-- The reference side of drift comparisons, computed once per registered reference (owner: detectors,
-- issue 3; detectors/reference_side.py). A comparison needs from the reference only its profile
-- (rows, missing, min/max, std, deciles, categories) and, per numerical column, the first level of
-- the fine histogram, all of which depend on the reference's rows alone. Stored here, a scheduled
-- run reads the window and never rescans the reference (except the few bins a refinement re-reads).
--
-- One row per (load, scope, column, expression, layout, level): `scope` is the reference sample's
-- WHERE (the load, or one segment of it), `level` is 'stats' (JSON in `stats`, no arrays), 'binned'
-- (keys = bins of the histogram grid) or 'by_value' (keys = the values themselves). `layout` versions
-- what is stored: a change of the histogram grid in the code stores new rows rather than misreading
-- old ones. Rows of a replaced load are deleted with its partition of reference_rows.
CREATE TABLE IF NOT EXISTS {db}.reference_sides (
    load_id String,
    scope String,
    column String,
    expr String,
    layout UInt16,
    level LowCardinality(String),
    stats String,
    keys Array(Float64),
    parts Array(UInt8),
    counts Array(UInt64),
    sums Array(Float64),
    computed_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (load_id, scope, column, expr, layout, level);
