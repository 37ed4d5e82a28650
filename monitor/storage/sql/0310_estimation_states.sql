-- What performance estimation fitted on a reference (owner: detectors, issue 13;
-- detectors/estimation_state.py): calibration maps or loss models, reference bands and the
-- reference's own metrics, as the JSON of detectors.estimation.estimator.Fitted. Fitted once per
-- (model, reference load, prediction settings); every scheduled window reuses it. Rows of a replaced
-- load are simply never read again (the load_id changes).
CREATE TABLE IF NOT EXISTS {db}.estimation_states (
    model LowCardinality(String),
    load_id String,
    settings String,
    state String,
    fitted_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(fitted_at)
ORDER BY (model, load_id, settings);
