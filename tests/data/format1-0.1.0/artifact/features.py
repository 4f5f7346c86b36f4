"""Feature code captured by nbprod. Generated; edit the notebook, not this file."""

def features(df):
    out = df.copy()
    out["usage_per_month"] = df["usage"] / (df["tenure"] + 1)
    return out
