"""Fits the example model with Debian's scikit-learn (python3-sklearn) on the diabetes
data set that ships inside scikit-learn, and saves it where the deployment expects it.

    /usr/bin/python3 train.py
"""
import os

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

X, y = load_diabetes(return_X_y=True)
model = Ridge(alpha=1.0).fit(X, y)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model", "sklearn_regression_model.pkl")
joblib.dump(model, out)
print(f"saved {out}: R^2 on the training data {model.score(X, y):.3f}")
