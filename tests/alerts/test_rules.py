"""Alert conditions over hand-built window reports: every condition, both directions, no clock, no I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.rules import _CONDITIONS, evaluate_rule
from detectors.report import DATASET, PREDICTION_COLUMN, StatResult
from monitor.errors import ConfigError
from monitor.settings import ALERT_CONDITIONS, RULE_METRICS, AlertRule
from tests.alerts.helpers import T0, drift_report, make_settings, prediction_rows, report_with


def rule(**kwargs: object) -> AlertRule:
    return AlertRule.model_validate(kwargs)


def test_every_configurable_condition_has_an_implementation() -> None:
    assert set(_CONDITIONS) == set(ALERT_CONDITIONS)


def test_dataset_drift_follows_the_share_verdict_and_lists_top_features() -> None:
    drifted = drift_report("m", T0, {"amount": 0.9, "age": 0.3})
    observation = evaluate_rule(rule(when="dataset_drift"), drifted)
    assert observation.outcome == "triggered"
    assert observation.value == pytest.approx(2 / 3)
    assert observation.threshold == 0.5
    assert [f.name for f in observation.findings] == ["amount", "age"]  # largest statistic first
    top = observation.findings[0]
    assert (top.statistic, top.value, top.threshold) == ("wasserstein_norm", 0.9, 0.1)
    assert top.stats["ks_p_value"] == 1e-9 and top.stats["psi"] == pytest.approx(1.8)
    assert "2 of 3 columns drifted" in observation.reason

    quiet = evaluate_rule(rule(when="dataset_drift"), drift_report("m", T0, {"amount": 0.9}))
    assert quiet.outcome == "clear" and quiet.value == pytest.approx(1 / 3)


def test_dataset_drift_with_an_explicit_share_bound() -> None:
    report = drift_report("m", T0, {"amount": 0.9})  # share 1/3, below the configured 0.5
    assert evaluate_rule(rule(when="dataset_drift", above=0.3), report).outcome == "triggered"
    assert evaluate_rule(rule(when="dataset_drift", above=0.34), report).outcome == "clear"


def test_insufficient_report_has_no_drift_verdict() -> None:
    report = drift_report("m", T0, status="insufficient_data")
    for when in ("dataset_drift", "feature_drift", "prediction_drift", "skew"):
        observation = evaluate_rule(rule(when=when), report)
        assert observation.outcome == "insufficient", when
        assert "min_samples" in observation.reason


def test_feature_drift_of_named_features_only() -> None:
    report = drift_report("m", T0, {"country": 0.5})
    assert evaluate_rule(rule(when="feature_drift", features=["amount"]), report).outcome == "clear"
    hit = evaluate_rule(rule(when="feature_drift", features=["amount", "country"]), report)
    assert hit.outcome == "triggered"
    assert [f.name for f in hit.findings] == ["country"]
    assert evaluate_rule(rule(when="feature_drift"), report).outcome == "triggered"  # any feature
    missing = evaluate_rule(rule(when="feature_drift", features=["income"]), report)
    assert missing.outcome == "insufficient"


def test_feature_drift_on_a_chosen_statistic_with_explicit_direction() -> None:
    report = drift_report("m", T0, {"amount": 0.05})  # below the deciding threshold 0.1: no verdict drift
    assert evaluate_rule(rule(when="feature_drift", features=["amount"]), report).outcome == "clear"
    # psi = 2 * 0.05 = 0.1 > 0.08: bad when above
    hit = evaluate_rule(rule(when="feature_drift", features=["amount"], metric="psi", above=0.08), report)
    assert hit.outcome == "triggered" and hit.threshold == 0.08 and hit.findings[0].statistic == "psi"
    # a p-value is bad when below: drifted amount has ks_p_value 1e-9 only when it is in `drifted`
    p_rule = rule(when="feature_drift", features=["amount"], metric="ks_p_value", below=0.01)
    assert evaluate_rule(p_rule, report).outcome == "triggered"
    assert evaluate_rule(p_rule, drift_report("m", T0, {})).outcome == "clear"


def test_prediction_drift_reads_the_prediction_detector() -> None:
    drifting = report_with("m", T0, prediction_rows(0.3))
    assert evaluate_rule(rule(when="prediction_drift"), drifting).outcome == "triggered"
    assert evaluate_rule(rule(when="prediction_drift"), report_with("m", T0, prediction_rows(0.01))).outcome == "clear"
    # without a prediction_drift detector, the prediction column of feature_drift decides
    fallback = report_with("m", T0, [StatResult("feature_drift", PREDICTION_COLUMN, "js", 0.4, 0.1, True)])
    assert evaluate_rule(rule(when="prediction_drift"), fallback).outcome == "triggered"
    # ... and feature_drift "any feature" ignores the prediction
    assert evaluate_rule(rule(when="feature_drift"), fallback).outcome == "insufficient"


def test_skew_dataset_level_and_per_feature() -> None:
    rows = [
        StatResult("skew", "amount", "psi", 0.4, 0.2, True),
        StatResult("skew", "country", "js", 0.01, 0.1, False),
        StatResult("skew", DATASET, "drift_share", 0.5, 0.5, True),
    ]
    report = report_with("m", T0, rows)
    assert evaluate_rule(rule(when="skew"), report).outcome == "triggered"
    assert evaluate_rule(rule(when="skew", features=["country"]), report).outcome == "clear"
    assert evaluate_rule(rule(when="skew", features=["amount"]), report).findings[0].name == "amount"


def test_data_quality_checks_above_a_bound() -> None:
    rows = [
        StatResult("data_quality", "amount", "missing_share", 0.25),
        StatResult("data_quality", "country", "missing_share", 0.05),
        StatResult("data_quality", "country", "new_categories", 2, details={"categories": ["BR", "XX"]}),
        StatResult("data_quality", DATASET, "unexpected_features", 1, details={"features": ["shoe_size"]}),
        StatResult("data_quality", DATASET, "absent_features", 0, details={"features": []}),
        StatResult("data_quality", "age", "out_of_range_share", 0.0),
        StatResult("data_quality", "age", "absent_key_share", 0.5, status="insufficient_data"),
    ]
    report = report_with("m", T0, rows)
    missing = evaluate_rule(rule(when="missing_share", above=0.1), report)
    assert missing.outcome == "triggered" and [f.name for f in missing.findings] == ["amount"]
    assert evaluate_rule(rule(when="missing_share", above=0.3), report).outcome == "clear"
    assert evaluate_rule(rule(when="missing_share", above=0.1, features=["country"]), report).outcome == "clear"
    new = evaluate_rule(rule(when="new_categories"), report)  # default bound 0: any new category
    assert new.outcome == "triggered" and new.findings[0].details["categories"] == ["BR", "XX"]
    unexpected = evaluate_rule(rule(when="unexpected_features"), report)
    assert unexpected.outcome == "triggered" and "shoe_size" in unexpected.reason
    assert evaluate_rule(rule(when="absent_features"), report).outcome == "clear"
    assert evaluate_rule(rule(when="out_of_range_share", above=0.0), report).outcome == "clear"
    assert evaluate_rule(rule(when="absent_key_share", above=0.1), report).outcome == "insufficient"


def test_volume_is_judged_even_when_the_window_is_too_small_for_drift() -> None:
    rows = [StatResult("volume", DATASET, "count", 3), StatResult("volume", DATASET, "change_vs_day", -0.99)]
    report = report_with("m", T0, rows, status="insufficient_data")
    low = evaluate_rule(rule(when="volume", below=100), report)
    assert low.outcome == "triggered" and low.value == 3 and low.threshold == 100
    assert evaluate_rule(rule(when="volume", below=2), report).outcome == "clear"
    assert evaluate_rule(rule(when="volume", metric="change_vs_day", below=-0.5), report).outcome == "triggered"
    assert evaluate_rule(rule(when="volume", above=1000), report).outcome == "clear"


def test_freshness_and_performance() -> None:
    rows = [
        StatResult("freshness", DATASET, "seconds_since_last_event", 900.0),
        StatResult("performance", DATASET, "accuracy", 0.71, details={"reference": 0.9}),
        StatResult("performance", DATASET, "log_loss", 0.9),
        StatResult("performance", DATASET, "f1", None, status="insufficient_data"),
    ]
    report = report_with("m", T0, rows)
    assert evaluate_rule(rule(when="freshness", above=600), report).outcome == "triggered"
    assert evaluate_rule(rule(when="freshness", above=1200), report).outcome == "clear"
    assert evaluate_rule(rule(when="performance", metric="accuracy", below=0.8), report).outcome == "triggered"
    assert evaluate_rule(rule(when="performance", metric="accuracy", below=0.7), report).outcome == "clear"
    assert evaluate_rule(rule(when="performance", metric="log_loss", above=0.5), report).outcome == "triggered"
    assert evaluate_rule(rule(when="performance", metric="f1", below=0.5), report).outcome == "insufficient"
    assert evaluate_rule(rule(when="performance", metric="auc", below=0.5), report).outcome == "insufficient"


def test_rules_that_need_a_bound_are_rejected_at_load() -> None:
    for bad in (
        {"when": "performance", "metric": "accuracy"},
        {"when": "performance", "below": 0.8},
        {"when": "volume"},
        {"when": "freshness"},
    ):
        with pytest.raises(ConfigError, match=r"models\.m\.alerts\.0"):
            make_settings(models={"m": {"alerts": [bad]}})


def test_rules_that_could_never_fire_as_written_are_rejected_at_load() -> None:
    """A metric no detector writes, a bound on the side that is never bad, or a bound with nothing to
    compare it to would leave a rule that never fires (``insufficient`` or ignored, window after window);
    the configuration says so at start-up, with the key path."""
    for bad, where, words in (
        ({"when": "performance", "metric": "acuracy", "below": 0.8}, r"alerts\.0\.metric", "'acuracy' is not"),
        ({"when": "performance", "metric": "auc", "below": 0.8}, r"alerts\.0\.metric", "roc_auc"),
        ({"when": "estimated_performance", "metric": "auc"}, r"alerts\.0\.metric", "roc_auc"),
        ({"when": "volume", "metric": "cnt", "below": 10}, r"alerts\.0\.metric", "change_vs_day"),
        ({"when": "freshness", "metric": "age", "above": 60}, r"alerts\.0\.metric", "seconds_since_last_event"),
        ({"when": "feature_drift", "metric": "psi"}, r"alerts\.0", "needs above"),
        ({"when": "prediction_drift", "metric": "js"}, r"alerts\.0", "needs above"),
        ({"when": "skew", "features": ["amount"], "metric": "psi"}, r"alerts\.0", "needs above"),
        ({"when": "feature_drift", "above": 0.2}, r"alerts\.0", "give metric"),
        ({"when": "missing_share", "below": 0.1}, r"alerts\.0", "use above"),
        ({"when": "dataset_drift", "below": 0.5}, r"alerts\.0", "use above"),
        ({"when": "dataset_drift", "features": ["amount"]}, r"alerts\.0", "does not take features"),
        ({"when": "performance", "metric": "accuracy", "below": 0.8, "features": ["amount"]}, r"alerts\.0", "features"),
        ({"when": "missing_share", "metric": "psi", "above": 0.1}, r"alerts\.0", "does not take metric"),
        ({"when": "multivariate_drift", "above": 0.5}, r"alerts\.0", "own threshold"),
    ):
        with pytest.raises(ConfigError, match=rf"models\.m\.{where}") as caught:
            make_settings(models={"m": {"alerts": [bad]}})
        assert words in str(caught.value), (bad, str(caught.value))
    fine = [  # every documented shape still loads
        {"when": "performance", "metric": "f1_macro", "below": 0.7},
        {"when": "performance", "metric": "mae", "above": 3},
        {"when": "performance", "metric": "label_coverage", "below": 0.5},
        {"when": "estimated_performance", "metric": "specificity_weighted"},
        {"when": "estimated_performance", "metric": "rmse", "above": 2},
        {"when": "volume", "metric": "change_vs_week", "below": -0.5},
        {"when": "freshness", "metric": "seconds_since_last_event", "above": 600},
        {"when": "feature_drift", "metric": "ks_p_value", "below": 0.01},
        {"when": "skew", "above": 0.3},
        {"when": "dataset_drift", "above": 0.3},
        {"when": "missing_share", "features": ["amount"], "above": 0.1},
        {"when": "skew", "features": ["amount"]},
        {"when": "multivariate_drift", "metric": "domain_classifier"},
    ]
    assert len(make_settings(models={"m": {"alerts": fine}}).models["m"].alerts) == len(fine)


def test_rule_metric_names_are_the_detectors_vocabulary() -> None:
    from detectors.checks import performance
    from detectors.estimation import metrics

    assert set(RULE_METRICS["performance"]) == {
        "label_coverage",
        *performance.CLASSIFICATION_METRICS,
        *performance.AVERAGED_METRICS,
        *performance.REGRESSION_METRICS,
    }
    assert set(RULE_METRICS["estimated_performance"]) == {m for names in metrics.METRICS.values() for m in names}


def test_rule_identity_is_stable_and_unique_per_model() -> None:
    assert rule(when="dataset_drift").identity == "dataset_drift"
    assert rule(when="feature_drift", features=["amount", "age"]).identity == "feature_drift:amount,age"
    assert rule(when="missing_share", above=0.1).identity == "missing_share>0.1"
    assert rule(when="performance", metric="accuracy", below=0.8).identity == "performance:accuracy<0.8"
    assert rule(when="dataset_drift", name="drift-page").identity == "drift-page"
    twice = [{"when": "dataset_drift"}, {"when": "dataset_drift", "severity": "critical"}]
    with pytest.raises(ConfigError, match="give one a name"):
        make_settings(models={"m": {"alerts": twice}})


def p_value_rows(p_values: dict[str, float], threshold: float = 0.05) -> list[StatResult]:
    """Deciding KS rows as the detectors write them: the p-value, its threshold, the method in details."""
    rows = [
        StatResult("feature_drift", name, "ks_p_value", p, threshold, p < threshold, details={"method": "ks"})
        for name, p in p_values.items()
    ]
    drifted = sum(p < threshold for p in p_values.values())
    return [*rows, StatResult("feature_drift", DATASET, "drift_share", drifted / len(rows), 0.5, drifted >= 1)]


def test_p_value_findings_list_the_smallest_p_value_first() -> None:
    """A p-value is stronger evidence the smaller it is: the strongest drift leads the findings, the
    reason and the alert's value (largest-first once put the weakest p-value on top)."""
    report = report_with("m", T0, p_value_rows({"f001": 0.04, "f088": 2.7e-273, "f050": 1e-5, "f007": 0.3}))
    for when in ("feature_drift", "dataset_drift"):
        observation = evaluate_rule(rule(when=when), report)
        assert [f.name for f in observation.findings] == ["f088", "f050", "f001"], when
    features = evaluate_rule(rule(when="feature_drift"), report)
    assert features.value == 2.7e-273 and features.threshold == 0.05
    assert features.reason.startswith("feature drift in f088 (ks_p_value 2.7e-273, threshold 0.05), f050")
    # a chosen p-value statistic with an explicit bound: smallest first too
    bounded = evaluate_rule(rule(when="feature_drift", metric="ks_p_value", below=0.05), report)
    assert [f.name for f in bounded.findings] == ["f088", "f050", "f001"] and bounded.value == 2.7e-273
    # nothing drifted: the clear value is the column closest to drifting (the smallest p-value)
    quiet = evaluate_rule(rule(when="feature_drift"), report_with("m", T0, p_value_rows({"a": 0.9, "b": 0.2})))
    assert quiet.outcome == "clear" and quiet.value == 0.2


def test_findings_of_different_statistics_are_ordered_by_how_far_past_their_threshold() -> None:
    rows = [
        StatResult(
            "feature_drift", "amount", "wasserstein_norm", 0.9, 0.1, True, details={"method": "wasserstein_norm"}
        ),
        StatResult("feature_drift", "country", "chi2_p_value", 1e-40, 0.05, True, details={"method": "chi2"}),
        StatResult("feature_drift", "age", "psi", 0.25, 0.2, True, details={"method": "psi"}),
        StatResult("feature_drift", "income", "ks_p_value", 0.049, 0.05, True, details={"method": "ks"}),
        StatResult("feature_drift", "zip", "ks_p_value", 0.0, 0.05, True),  # underflow; method from the name
        StatResult("feature_drift", DATASET, "drift_share", 1.0, 0.5, True),
    ]
    report = report_with("m", T0, rows)
    expected = ["zip", "country", "amount", "age", "income"]  # inf, 30.7, 9, 1.25, 1.006 times the threshold
    observation = evaluate_rule(rule(when="feature_drift"), report)
    assert [f.name for f in observation.findings] == expected
    assert observation.value == 0.0 and observation.threshold == 0.05
    assert [f.name for f in evaluate_rule(rule(when="dataset_drift"), report).findings] == expected


def test_a_distance_bound_lists_the_largest_value_first() -> None:
    rows = [StatResult("feature_drift", n, "psi", v) for n, v in (("a", 0.3), ("b", 0.9), ("c", 0.5), ("d", 0.1))]
    rows.append(StatResult("feature_drift", DATASET, "drift_share", 0.0, 0.5, False))
    observation = evaluate_rule(rule(when="feature_drift", metric="psi", above=0.2), report_with("m", T0, rows))
    assert [f.name for f in observation.findings] == ["b", "c", "a"] and observation.value == 0.9


def test_findings_carry_every_drifted_column_not_a_top_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retraining webhook gets the findings: all 94 drifted features, not the first 10 silently."""
    names = tuple(f"f{i:03d}" for i in range(94))
    report = drift_report("m", T0, {name: 0.2 + i / 100 for i, name in enumerate(names)}, features=names)
    for when in ("dataset_drift", "feature_drift"):
        observation = evaluate_rule(rule(when=when), report)
        assert len(observation.findings) == 94 and observation.findings_total == 94, when
        assert observation.findings[0].name == "f093" and observation.findings[-1].name == "f000"
    assert "and 91 more" in evaluate_rule(rule(when="feature_drift"), report).reason
    # bounded (a model allowed more features than the default limit): the count stays true
    monkeypatch.setattr("alerts.rules.FINDINGS_MAX", 5)
    bounded = evaluate_rule(rule(when="dataset_drift"), report)
    assert [f.name for f in bounded.findings] == ["f093", "f092", "f091", "f090", "f089"]
    assert bounded.findings_total == 94


def test_a_failed_detector_silences_its_own_rules_only() -> None:
    """A run where another detector failed (performance, a segment's drift) still has a drift verdict:
    the failure must not mute dataset and feature drift alerts; the rule's own detector failing does."""
    base = drift_report("m", T0, {"amount": 0.9, "age": 0.3}, extra=tuple(prediction_rows(0.5)))
    failed = StatResult("performance", DATASET, "error", None, status="error", details={"error": "boom"})
    elsewhere = StatResult("feature_drift", "amount", "error", None, segment="region=EU", status="error")
    for other in (failed, elsewhere):
        report = report_with("m", T0, [*base.results, other], status="error")
        for when in ("dataset_drift", "feature_drift", "prediction_drift", "skew"):
            extra = {"features": ["amount"]} if when == "skew" else {}
            skew_rows = [replace(r, detector="skew") for r in base.results if r.detector == "feature_drift"]
            seen = report_with("m", T0, [*report.results, *skew_rows], status="error")
            assert evaluate_rule(rule(when=when, **extra), seen).outcome == "triggered", (when, other.detector)
    own = StatResult("feature_drift", "country", "error", None, status="error", details={"error": "boom"})
    report = report_with("m", T0, [*base.results, own], status="error")
    for when in ("dataset_drift", "feature_drift"):
        observation = evaluate_rule(rule(when=when), report)
        assert observation.outcome == "insufficient" and "feature_drift" in observation.reason, when
    assert evaluate_rule(rule(when="prediction_drift"), report).outcome == "triggered"
