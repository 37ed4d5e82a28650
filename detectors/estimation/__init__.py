"""Performance estimated before labels arrive: confidence-based estimation for classifiers, direct loss
estimation for regressors, confidence bands from sampling error and thresholds from reference chunks.

Pure numpy code (no scikit-learn import) with no I/O: :func:`detectors.estimation.estimator.fit` turns a labelled
reference into a small serialisable :class:`~detectors.estimation.estimator.Fitted` state (fit once per
reference, store it) and :func:`~detectors.estimation.estimator.estimate` applies it to unlabelled chunks.
"""
