"""Multivariate drift: changes in how columns relate to each other, which no column-by-column test sees.

- :mod:`detectors.drift.multivariate.pca`: PCA reconstruction error (NannyML's data reconstruction method);
- :mod:`detectors.drift.multivariate.domain`: a domain classifier's cross-validated ROC AUC;
- :mod:`detectors.drift.multivariate.rows`: the bounded row samples both work on, drawn inside ClickHouse;
- :mod:`detectors.drift.multivariate.compare`: both methods for one reference and one current sample.
"""
