"""Package a small artifact with nbprod as it is on main before the layout move."""
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import nbprod

rng = np.random.default_rng(11)
n = 400
df = pd.DataFrame({
    "customer_id": [f"C{i:05d}" for i in range(n)],
    "plan": pd.array(rng.choice(["basic", "plus", "pro"], n), dtype="str"),
    "usage": rng.gamma(2.0, 10.0, n).round(3),
    "tenure": rng.integers(0, 60, n),
})
score = df["usage"] * 0.05 + (df["plan"] == "pro") * 1.5 + df["tenure"] / 30 + rng.normal(0, 0.6, n)
df["churned"] = (score > 2.4).astype(int)
train, valid, new = df.iloc[:250], df.iloc[250:330], df.iloc[330:]

def features(df):
    out = df.copy()
    out["usage_per_month"] = df["usage"] / (df["tenure"] + 1)
    return out

s = nbprod.Session("churn-v1-fixture")
s.snapshot(train, role="train", target="churned", id="customer_id", sample_size=40)
s.snapshot(valid, role="valid", target="churned", id="customer_id", sample_size=40)
s.features(features)
pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder=StandardScaler())
model = make_pipeline(pre, LogisticRegression(max_iter=1000))
model.fit(features(train.drop(columns=["churned", "customer_id"])), train["churned"])
s.model(model)
s.check("metric", metric="roc_auc", min=0.7)
s.package("artifact", log_to_mlflow=False)
new.drop(columns=["churned"]).to_csv("batch.csv", index=False)
new[["customer_id", "churned"]].to_csv("batch.labels.csv", index=False)
