"""The demo's model: scikit-learn's breast cancer data (ships inside scikit-learn: no download), a
logistic regression trained on it, and a generative model of the data (:mod:`monitor.demo.generator`)
that both the reference file and the traffic are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.demo.generator import PatientGenerator
from monitor.demo.generator import fit as fit_generator

MODEL_NAME = "breast-cancer"
MODEL_VERSION = "1"
# A readable subset of the 30 measurements; snake_case names as a serving team would log them.
FEATURES = {
    "mean radius": "mean_radius",
    "mean texture": "mean_texture",
    "mean perimeter": "mean_perimeter",
    "mean area": "mean_area",
    "mean smoothness": "mean_smoothness",
    "mean compactness": "mean_compactness",
    "mean concavity": "mean_concavity",
    "mean symmetry": "mean_symmetry",
}
CHANNELS = ("clinic", "hospital", "screening")  # a categorical feature: where the scan came from
REFERENCE_ROWS = 5_000
REFERENCE_SEED = 20_261_130
DRIFTED = ("mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_concavity")
FAULTY = "mean_smoothness"  # goes missing for part of the traffic after the fault starts


@dataclass
class DemoModel:
    pipeline: object
    train: pd.DataFrame  # features only
    serve: pd.DataFrame  # held-out rows
    serve_labels: np.ndarray
    stds: pd.Series
    generator: PatientGenerator  # fitted on all rows: the reference and the traffic are drawn from it

    @property
    def feature_names(self) -> list[str]:
        return list(self.train.columns)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        numeric = frame[list(FEATURES.values())].astype(float)
        numeric = numeric.fillna(self.train[list(FEATURES.values())].median())
        return self.pipeline.predict_proba(numeric)[:, 1]  # type: ignore[attr-defined]


def train(seed: int = 0) -> DemoModel:
    """Train the model and keep a held-out part of the data to replay as production traffic."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame[list(FEATURES)].rename(columns=FEATURES)
    rng = np.random.default_rng(seed)
    frame["channel"] = rng.choice(CHANNELS, size=len(frame), p=[0.5, 0.3, 0.2])
    x_train, x_serve, y_train, y_serve = train_test_split(
        frame, data.target.to_numpy(), test_size=0.4, random_state=seed, stratify=data.target
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(x_train[list(FEATURES.values())], y_train)
    generator = fit_generator(frame, data.target.to_numpy(), list(FEATURES.values()))
    model = DemoModel(
        pipeline,
        x_train.reset_index(drop=True),
        x_serve.reset_index(drop=True),
        y_serve,
        frame.std(numeric_only=True),
        generator,
    )
    model.train_labels = y_train  # type: ignore[attr-defined]
    return model


def reference_frame(model: DemoModel, rows: int = REFERENCE_ROWS, seed: int = REFERENCE_SEED) -> pd.DataFrame:
    """Patients drawn from the generator (as the traffic is) with the model's predictions and the true
    labels, so the reference carries the model's performance too."""
    frame, labels = model.generator.sample(rows, np.random.default_rng(seed))
    frame["prediction"] = model.predict_proba(frame)
    frame["label"] = labels
    return frame


def write_reference(model: DemoModel, path: Path) -> Path:
    """:func:`reference_frame` as Parquet."""
    frame = reference_frame(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path
